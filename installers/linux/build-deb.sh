#!/usr/bin/env bash
# Pack an already built meteord binary into a Debian package: stage the
# file tree, write the control files, and let dpkg-deb build the archive.
#
#   installers/linux/build-deb.sh TARGET-TRIPLE BINARY OUTDIR ["SERVICE ARGS"]
#
# SERVICE ARGS are appended to the unit's ExecStart (options that only some
# builds understand). Prints the path of the .deb.
set -euo pipefail

target=$1 binary=$2 outdir=$3 service_args=${4:-}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

# Who the package names as its maintainer.
MAINTAINER=${DEB_MAINTAINER:-"meteord maintainers <meteord@example.org>"}

case "$target" in
x86_64-unknown-linux-gnu) arch=amd64 ;;
aarch64-unknown-linux-gnu) arch=arm64 ;;
armv7-unknown-linux-gnueabihf) arch=armhf ;;
*) echo "build-deb.sh: no Debian architecture for $target" >&2; exit 2 ;;
esac

# The version the binary was built as (scripts/release.sh sets it), else
# the package's.
version=${METEORD_VERSION:-$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)}
debversion="$version-1"

# Runtime dependencies from the libraries the binary links and the newest
# glibc symbol version it uses. An unknown library stops the build, so a
# new dependency cannot slip into a package that does not declare it.
needed=$(readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
glibc=$(readelf --version-info "$binary" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n1)
depends="libc6 (>= $glibc)"
for lib in $needed; do
    case "$lib" in
    libc.so.6 | libm.so.6 | libpthread.so.0 | libdl.so.2 | librt.so.1 | ld-linux*) ;;
    libgcc_s.so.1) depends+=", libgcc-s1" ;;
    *) echo "build-deb.sh: $binary links $lib; add its package here" >&2; exit 1 ;;
    esac
done
depends+=", adduser"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"
install -D -m 0755 "$binary" "$stage/usr/bin/meteord"
# Updates of this copy come from the next package: meteord leaves the
# release feed alone unless UpdateFeed is set (src/update/feed.rs).
mkdir -p "$stage/usr/share/meteord"
echo deb >"$stage/usr/share/meteord/meteord-package"
chmod 0644 "$stage/usr/share/meteord/meteord-package"
{
    echo "# Installed by the meteord package: the service reads this file"
    echo "# (meteord -ConfigFileLocation /etc/meteord/meteord.conf). After a change:"
    echo "# systemctl reload meteord. See /usr/share/doc/meteord/INSTALL.md."
    echo "#"
    cat "$root/assets/meteord.conf"
} >"$stage/meteord.conf"
install -D -m 0644 "$stage/meteord.conf" "$stage/etc/meteord/meteord.conf"
rm "$stage/meteord.conf"
mkdir -p "$stage/lib/systemd/system"
sed "s|@EXTRA_ARGS@|${service_args:+ $service_args}|" "$here/meteord.service.in" \
    >"$stage/lib/systemd/system/meteord.service"
chmod 0644 "$stage/lib/systemd/system/meteord.service"
install -D -m 0644 "$root/INSTALL.md" "$stage/usr/share/doc/meteord/INSTALL.md"
install -D -m 0644 "$root/README.md" "$stage/usr/share/doc/meteord/README.md"
cat >"$stage/usr/share/doc/meteord/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: meteord

Files: *
License: GPL-2.0-or-later
 On Debian systems the full text of the GNU General Public License version 2
 is in /usr/share/common-licenses/GPL-2.
COPYRIGHT
chmod 0644 "$stage/usr/share/doc/meteord/copyright"

mkdir -p "$stage/DEBIAN"
install -m 0755 "$here/debian/postinst" "$here/debian/prerm" "$here/debian/postrm" "$stage/DEBIAN/"
echo /etc/meteord/meteord.conf >"$stage/DEBIAN/conffiles"
# Checksums of every file but the conffiles, as dpkg --verify expects.
(cd "$stage" && find usr lib -type f | sort | xargs md5sum) >"$stage/DEBIAN/md5sums"
cat >"$stage/DEBIAN/control" <<CONTROL
Package: meteord
Version: $debversion
Architecture: $arch
Maintainer: $MAINTAINER
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Depends: $depends
Section: net
Priority: optional
Description: realtime HTTP push server, compatible with meteord 1.06
 Publishers send messages to a TCP control port; browsers hold HTTP
 connections (legacy /push modes, Server-Sent Events, WebSocket,
 long-poll) and receive each message the moment it is published.
 Runs as the meteord system service, with its configuration in
 /etc/meteord and its data in /var/lib/meteord.
CONTROL

mkdir -p "$outdir"
deb="$outdir/meteord_${debversion}_${arch}.deb"
# Reproducible: every file dated to the last commit.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
