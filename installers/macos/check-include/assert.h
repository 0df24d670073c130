/* A stand-in for the SDK's assert.h when type-checking the macOS build
   from Linux (scripts/check-macos.sh): nothing is linked or run. */
#ifndef METEORD_CHECK_ASSERT_H
#define METEORD_CHECK_ASSERT_H
#define assert(e) ((void)0)
#ifndef __cplusplus
#define static_assert _Static_assert
#endif
#endif
