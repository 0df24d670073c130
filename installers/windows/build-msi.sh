#!/usr/bin/env bash
# Build meteord-<version>-x86_64.msi from an already built meteord.exe with
# wixl (Debian package wixl). Prints the path of the .msi.
#
#   installers/windows/build-msi.sh METEORD.EXE OUTDIR ["EXTRA ARGS"]
#
# msiexec /i meteord-<version>-x86_64.msi ADDLOCAL=Main,Service also installs
# the Windows service (see meteord.wxs.in).
#
# EXTRA ARGS are added to the command line of the Start-menu entry and of
# the autostart entry (options that only some builds understand); they run
# in C:\ProgramData\meteord, so paths are best relative to it.
set -euo pipefail

exe=$1 outdir=$2 extra=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

# The version the program was built as (scripts/release.sh sets it), else
# the package's.
version=${METEORD_VERSION:-$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)}
# Windows Installer versions are numbers only: 1.2.3-beta.1 becomes 1.2.3.
msiversion=${version%%[-+]*}

# How the Start-menu entry and the autostart entry run the server: in
# C:\ProgramData\meteord, with the configuration and the data there (paths
# relative to it, see meteord.wxs.in).
args='-ConfigFileLocation meteord.conf -DataDirectory .'
args+="${extra:+ $extra}"
xml_args=$(printf '%s' "$args" | sed -e 's/&/\&amp;/g' -e 's/"/\&quot;/g' -e 's/</\&lt;/g')

mkdir -p "$outdir"
msi="$(cd "$outdir" && pwd)/meteord-$version-x86_64.msi"

# wixl finds the files by relative name, so everything goes in one place.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$exe" "$work/meteord.exe"
# Updates of an installed copy come from the next .msi (src/update/feed.rs).
printf 'msi\r\n' >"$work/meteord-package"
cp "$root/assets/icons/meteord.ico" "$work/meteord.ico"
# The example in Windows line endings, so Notepad shows its lines.
sed 's/$/\r/' "$root/assets/meteord.conf" >"$work/meteord.conf.example"
sed -e "s|@VERSION@|$msiversion|g" \
    -e "s|@ARGS@|$(printf '%s' "$xml_args" | sed 's/[|&\\]/\\&/g')|g" \
    "$here/meteord.wxs.in" >"$work/meteord.wxs"
(cd "$work" && wixl -a x64 -o "$msi" meteord.wxs)
echo "$msi"
