#!/usr/bin/env bash
# Type-check the macOS build from Linux: `cargo check --features tray` for
# aarch64-apple-darwin (the tray's AppKit loop through tao, the macOS-only
# code paths; no code of ours depends on the processor, so Intel Macs are
# checked only with --intel-too). Nothing is linked: there is no
# macOS SDK here. C build scripts (ring) compile with Debian's clang, its
# freestanding headers and the few stand-ins in installers/macos/check-include;
# macOS builds use the system SQLite, so no C library is needed for it.
# The real build, smoke test and tray check run on a Mac in
# .github/workflows/macos.yml.
#
# When rustup cannot fetch the macOS targets, this says so loudly and skips.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=(aarch64-apple-darwin)
[ "${1:-}" = --intel-too ] && TARGETS+=(x86_64-apple-darwin)
installed=$(rustup target list --installed)
missing=()
for target in "${TARGETS[@]}"; do
    grep -qx "$target" <<<"$installed" || missing+=("$target")
done
if [ ${#missing[@]} -gt 0 ] && ! rustup target add "${missing[@]}"; then
    echo "check-macos.sh: SKIPPED the macOS type check: 'rustup target add ${missing[*]}' failed on this machine." >&2
    echo "check-macos.sh: the macOS workflow (.github/workflows/macos.yml) still builds and tests it on a Mac." >&2
    exit 0
fi
bash scripts/ensure-packages.sh clang llvm

resource=$(clang -print-resource-dir)
stubs=$PWD/installers/macos/check-include
ar=$(command -v llvm-ar || ls /usr/bin/llvm-ar-* 2>/dev/null | sort -V | tail -n1)
[ -n "$ar" ] || { echo "check-macos.sh: no llvm-ar" >&2; exit 1; }
for target in "${TARGETS[@]}"; do
    case "$target" in
    aarch64-*) clang_target=arm64-apple-macosx11.0 ;;
    x86_64-*) clang_target=x86_64-apple-macosx10.15 ;;
    esac
    var=${target//-/_}
    echo "== cargo check --target $target --features tray"
    env "CC_$var=clang" "AR_$var=$ar" \
        "CFLAGS_$var=--target=$clang_target -ffreestanding -nostdinc -isystem $resource/include -isystem $stubs" \
        cargo check --locked --quiet --target "$target" --features tray --lib --bins
done
echo "check-macos.sh: the macOS build type-checks (${TARGETS[*]})"
