#!/usr/bin/env bash
# Build meteord.app and meteord-<version>.pkg on macOS from meteord binaries
# already built (one per architecture; several are joined into one
# universal binary with lipo). Signs and notarizes when the identities are
# given. Used by .github/workflows/macos.yml; needs Xcode's command line
# tools (lipo, codesign, pkgbuild, productbuild, PlistBuddy, notarytool).
#
#   installers/macos/build-macos.sh OUTDIR BINARY [BINARY...]
#
# Environment (all optional):
#   MACOS_SIGN_IDENTITY       "Developer ID Application: ..." signs the app
#   MACOS_INSTALLER_IDENTITY  "Developer ID Installer: ..." signs the .pkg
#   MACOS_NOTARY_PROFILE      a `xcrun notarytool store-credentials` profile;
#                             the .pkg is notarized and stapled
#   SERVICE_ARGS              extra options for the launchd service
#                             (default: -LogDirectory and --no-tray when
#                             the binary's --help lists them)
set -euo pipefail

if [ "$(uname -s)" != Darwin ]; then
    echo "build-macos.sh: runs on macOS only (lipo, codesign, pkgbuild)" >&2
    exit 2
fi
outdir=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# The version the binaries were built as (scripts/release.sh and the
# release workflow set it), else the package's.
version=${METEORD_VERSION:-$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
payload="$work/root"
app="$payload/Applications/meteord.app"
mkdir -p "$app/Contents/MacOS" "$app/Contents/Resources" "$payload/Library/LaunchDaemons"

lipo -create -output "$app/Contents/MacOS/meteord" "$@"
lipo -info "$app/Contents/MacOS/meteord"
sed "s/@VERSION@/$version/g" "$here/Info.plist.in" >"$app/Contents/Info.plist"
cp "$root/assets/icons/meteord.icns" "$app/Contents/Resources/meteord.icns"
cp "$root/assets/meteord.conf" "$app/Contents/Resources/meteord.conf"
# The app is updated by the next .pkg (or .zip): meteord leaves the
# release feed alone unless UpdateFeed is set (src/update/feed.rs).
echo pkg >"$app/Contents/Resources/meteord-package"
plutil -lint "$app/Contents/Info.plist"

daemon="$payload/Library/LaunchDaemons/org.meteord.meteord.plist"
if [ -z "${SERVICE_ARGS+set}" ]; then
    help=$("$app/Contents/MacOS/meteord" --help)
    SERVICE_ARGS=""
    if grep -q -- '-LogDirectory' <<<"$help"; then SERVICE_ARGS+=" -LogDirectory /Library/Logs/meteord"; fi
    if grep -q -- '--no-tray' <<<"$help"; then SERVICE_ARGS+=" --no-tray"; fi
fi
cp "$here/org.meteord.meteord.plist" "$daemon"
for arg in ${SERVICE_ARGS:-}; do
    /usr/libexec/PlistBuddy -c "Add :ProgramArguments: string $arg" "$daemon"
done
plutil -lint "$daemon"

if [ -n "${MACOS_SIGN_IDENTITY:-}" ]; then
    # Hardened runtime and a secure timestamp: both required for notarization.
    codesign --force --options runtime --timestamp --sign "$MACOS_SIGN_IDENTITY" "$app"
    codesign --verify --strict --verbose=2 "$app"
else
    echo "build-macos.sh: MACOS_SIGN_IDENTITY not set; the app is not signed" >&2
fi

mkdir -p "$outdir"
# The .app alone, for dragging into /Applications.
ditto -c -k --keepParent "$app" "$outdir/meteord-$version-macos.zip"

# The installer: the app stays in /Applications even if another copy
# exists elsewhere (bundles are relocatable by default).
pkgbuild --analyze --root "$payload" "$work/components.plist"
/usr/libexec/PlistBuddy -c "Set :0:BundleIsRelocatable false" "$work/components.plist"
pkgbuild --root "$payload" --component-plist "$work/components.plist" \
    --identifier org.meteord.pkg --version "$version" \
    --scripts "$here/scripts" --install-location / "$work/meteord-component.pkg"
pkg="$outdir/meteord-$version.pkg"
if [ -n "${MACOS_INSTALLER_IDENTITY:-}" ]; then
    productbuild --package "$work/meteord-component.pkg" --sign "$MACOS_INSTALLER_IDENTITY" "$pkg"
else
    productbuild --package "$work/meteord-component.pkg" "$pkg"
fi

if [ -n "${MACOS_NOTARY_PROFILE:-}" ]; then
    xcrun notarytool submit "$pkg" --keychain-profile "$MACOS_NOTARY_PROFILE" --wait
    xcrun stapler staple "$pkg"
fi
echo "$pkg"
