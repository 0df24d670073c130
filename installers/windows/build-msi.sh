#!/usr/bin/env bash
# Build meteord-<version>-x86_64.msi from an already built meteord.exe with
# wixl (Debian package wixl). Prints the path of the .msi.
#
#   installers/windows/build-msi.sh METEORD.EXE OUTDIR ["EXTRA ARGS"]
#
# EXTRA ARGS are added to the command line of the Start-menu entry and of
# the autostart entry (options that only some builds understand; Windows
# installer properties such as [CommonAppDataFolder] may be used).
set -euo pipefail

exe=$1 outdir=$2 extra=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)
# Windows Installer versions are numbers only: 1.2.3-beta.1 becomes 1.2.3.
msiversion=${version%%[-+]*}

# How the Start-menu entry and the autostart entry run the server: the
# installed configuration, and the data under ProgramData.
args='-ConfigFileLocation "[INSTALLDIR]meteord.conf" -DataDirectory "[CommonAppDataFolder]meteord"'
args+="${extra:+ $extra}"
xml_args=$(printf '%s' "$args" | sed -e 's/&/\&amp;/g' -e 's/"/\&quot;/g' -e 's/</\&lt;/g')

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The configuration in Windows line endings, so Notepad shows its lines.
sed 's/$/\r/' "$root/assets/meteord.conf" >"$work/meteord.conf"
sed -e "s|@VERSION@|$msiversion|g" \
    -e "s|@EXE@|$exe|g" \
    -e "s|@CONF@|$work/meteord.conf|g" \
    -e "s|@ICON@|$root/assets/icons/meteord.ico|g" \
    -e "s|@ARGS@|$(printf '%s' "$xml_args" | sed 's/[|&\\]/\\&/g')|g" \
    "$here/meteord.wxs.in" >"$work/meteord.wxs"

mkdir -p "$outdir"
msi="$outdir/meteord-$version-x86_64.msi"
wixl -a x64 -o "$msi" "$work/meteord.wxs"
echo "$msi"
