/* Just enough of macOS's TargetConditionals.h for C build scripts (ring)
   to compile when scripts/check-macos.sh type-checks the macOS build from
   Linux. Real macOS builds use the SDK's own header. */
#ifndef METEORD_CHECK_TARGET_CONDITIONALS_H
#define METEORD_CHECK_TARGET_CONDITIONALS_H
#define TARGET_OS_MAC 1
#define TARGET_OS_OSX 1
#define TARGET_OS_IPHONE 0
#define TARGET_OS_IOS 0
#define TARGET_OS_TV 0
#define TARGET_OS_WATCH 0
#define TARGET_OS_VISION 0
#define TARGET_OS_SIMULATOR 0
#define TARGET_OS_EMBEDDED 0
#if defined(__aarch64__) || defined(__arm64__)
#define TARGET_CPU_ARM64 1
#define TARGET_CPU_X86_64 0
#else
#define TARGET_CPU_ARM64 0
#define TARGET_CPU_X86_64 1
#endif
#endif
