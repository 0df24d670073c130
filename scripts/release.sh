#!/usr/bin/env bash
# Make a release: build meteord for every target as VERSION with the
# release feed built in, pack and sign the update archives, write the
# release manifest, build the packages from the same binaries, and write
# checksums with their signature. Everything lands in OUT (default
# target/release-VERSION/), ready to publish as they are.
#
#   scripts/release.sh VERSION [options]
#
#   --key FILE          the release signing key (64 bytes, zipsign's format;
#                       default: $METEORD_RELEASE_KEY). It must be outside the
#                       repository, and its public half must be
#                       assets/update-key.pub (what meteord trusts).
#   --feed URL          the feed URL built into the binaries (default:
#                       $METEORD_UPDATE_FEED); an https:// URL, or http:// to
#                       this machine only. Empty: no built-in feed.
#   --download-base URL where the archives will be served (default: beside
#                       the manifest, as relative URLs)
#   --targets "T ..."   target triples to build here (default: the Linux and
#                       Windows ones; macOS builds on a Mac)
#   --binary T=PATH     use a binary built elsewhere for target T (the macOS
#                       workflow's); it must have been built as VERSION
#   --extra FILE        a file to publish with the release (the macOS .pkg and
#                       .zip, built on a Mac); checksummed like the rest
#   --profile NAME      cargo profile (default: release)
#   --out DIR           output directory
#   --no-packages       archives, manifest and checksums only
#   --test-release      a release for tests: any version, any key
#
# The GitHub workflow .github/workflows/release.yml runs this on a tag.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 1 ] || usage
version=$1
shift
key=${METEORD_RELEASE_KEY:-}
feed=${METEORD_UPDATE_FEED:-}
download_base=""
targets="x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf x86_64-pc-windows-gnu"
declare -A prebuilt=()
extras=()
profile=release
out=""
packages=yes
test_release=no
while [ $# -gt 0 ]; do
    case "$1" in
    --key) key=$2; shift 2 ;;
    --feed) feed=$2; shift 2 ;;
    --download-base) download_base=${2%/}/; shift 2 ;;
    --targets) targets=$2; shift 2 ;;
    --binary) prebuilt[${2%%=*}]=${2#*=}; shift 2 ;;
    --extra) extras+=("$2"); shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --no-packages) packages=no; shift ;;
    --test-release) test_release=yes; shift ;;
    *) usage ;;
    esac
done
for target in "${!prebuilt[@]}"; do
    [[ " $targets " == *" $target "* ]] || targets+=" $target"
done
out=${out:-${CARGO_TARGET_DIR:-target}/release-$version}

fail() { echo "release.sh: $*" >&2; exit 1; }
step() { echo "== release $version: $*" >&2; }

# --- checks ------------------------------------------------------------------

semver='^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$'
[[ $version =~ $semver ]] || fail "'$version' is not a version (1.2.3 or 1.3.0-beta.1)"
package_version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)
if [ "$version" != "$package_version" ] && [ "$test_release" = no ]; then
    fail "Cargo.toml says $package_version; set it to $version (and tag that commit v$version)"
fi
[ -n "$key" ] || fail "no signing key: --key FILE or METEORD_RELEASE_KEY"
[ -f "$key" ] || fail "no signing key at $key"
case "$(realpath "$key")/" in
"$root"/*) fail "the signing key is inside the repository ($key); keep it elsewhere" ;;
esac
if [ -n "$feed" ] && [[ $feed != https://* ]] && ! [[ $feed =~ ^http://(127\.[0-9.]+|localhost|\[::1\])(:[0-9]+)?/ ]]; then
    fail "the feed must be an https:// URL (plain http:// only to this machine): $feed"
fi

sign() { cargo run --quiet --locked ${HOST_FEATURES:-} --example release-sign -- "$@"; }
public_hex=$(sign public "$key")
release_hex=$(od -An -tx1 -v assets/update-key.pub | tr -d ' \n')
if [ "$public_hex" != "$release_hex" ] && [ "$test_release" = no ]; then
    fail "this key is not the release key: meteord trusts assets/update-key.pub ($release_hex), the key's public half is $public_hex"
fi

# --- binaries ------------------------------------------------------------------

features_for() { # desktop builds (Windows, macOS) have the tray icon
    case "$1" in
    *-windows-* | *-apple-darwin) echo "--features tray" ;;
    *) echo "" ;;
    esac
}
exe_for() { case "$1" in *-windows-*) echo meteord.exe ;; *) echo meteord ;; esac; }
target_dir=${CARGO_TARGET_DIR:-target}

rm -rf "$out"
mkdir -p "$out"
declare -A binary=()
for target in $targets; do
    if [ -n "${prebuilt[$target]:-}" ]; then
        binary[$target]=${prebuilt[$target]}
        continue
    fi
    step "build $target ($profile)"
    # shellcheck disable=SC2046 # features are words
    METEORD_VERSION=$version METEORD_UPDATE_FEED=$feed \
        cargo build --locked --quiet --profile "$profile" --bin meteord --target "$target" $(features_for "$target")
    profile_dir=$profile
    [ "$profile" = dev ] && profile_dir=debug
    binary[$target]=$target_dir/$target/$profile_dir/$(exe_for "$target")
done

# --- update archives, signed, and the manifest ---------------------------------------

assets_json=""
for target in $targets; do
    name=meteord-$version-$target.tar.gz
    step "pack and sign $name"
    stage=$(mktemp -d)
    install -m 0755 "${binary[$target]}" "$stage/$(exe_for "$target")"
    tar -C "$stage" -czf "$out/$name" "$(exe_for "$target")"
    rm -rf "$stage"
    # Signed under its final name: the signature is bound to it.
    sign sign-tar "$out/$name" "$key"
    sign verify-tar "$out/$name" "$key" >/dev/null
    assets_json+="${assets_json:+,}{\"name\":\"$name\",\"url\":\"$download_base$name\"}"
done
printf '{"schema":1,"releases":[{"version":"%s","assets":[%s]}]}\n' "$version" "$assets_json" >"$out/manifest.json"

# --- packages from the same binaries ----------------------------------------------

if [ "$packages" = yes ]; then
    for target in $targets; do
        case "$target" in
        *-linux-gnu*)
            step "package .deb ($target)"
            METEORD_VERSION=$version installers/linux/build-deb.sh "$target" "${binary[$target]}" "$out" \
                "-LogDirectory /var/log/meteord --no-tray" >/dev/null
            ;;
        x86_64-pc-windows-gnu)
            step "package .msi"
            METEORD_VERSION=$version installers/windows/build-msi.sh "${binary[$target]}" "$out" "-LogDirectory logs" >/dev/null
            ;;
        *-apple-darwin) ;; # the macOS workflow packs both architectures into one .pkg
        esac
    done
fi

for extra in "${extras[@]}"; do
    cp "$extra" "$out/"
done

# --- checksums and their signature --------------------------------------------------

step "checksums"
(cd "$out" && find . -maxdepth 1 -type f ! -name 'SHA256SUMS*' -printf '%f\n' | LC_ALL=C sort |
    xargs sha256sum >SHA256SUMS)
sign sign-file "$out/SHA256SUMS" "$key"
[ "$test_release" = yes ] && step "TEST RELEASE: not for publishing (--test-release)"
step "done: $out"
ls -l "$out" >&2
echo "$out"
