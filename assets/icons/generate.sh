#!/usr/bin/env bash
# Render the Meteor mark (meteord.svg, the admin UI's favicon) into the
# icon files the installers use. The results are committed; rerun this
# after changing the SVG. Needs rsvg-convert (librsvg2-bin), png2icns
# (icnsutils) and python3.
set -euo pipefail
cd "$(dirname "$0")"
for size in 16 32 48 64 128 256 512 1024; do
    rsvg-convert -w "$size" -h "$size" meteord.svg -o "meteord-$size.png"
done
# Windows: one .ico holding PNG images (allowed since Windows Vista).
python3 - meteord.ico meteord-16.png meteord-32.png meteord-48.png meteord-256.png <<'PY'
import struct, sys
out, pngs = sys.argv[1], sys.argv[2:]
images = [open(p, "rb").read() for p in pngs]
header = struct.pack("<HHH", 0, 1, len(images))
offset = len(header) + 16 * len(images)
entries, data = b"", b""
for blob in images:
    width, height = struct.unpack(">II", blob[16:24])  # the PNG IHDR
    entries += struct.pack("<BBBBHHII", width % 256, height % 256, 0, 0, 1, 32, len(blob), offset + len(data))
    data += blob
open(out, "wb").write(header + entries + data)
PY
# macOS: .icns from the sizes it knows (png2icns takes 16..1024).
png2icns meteord.icns meteord-16.png meteord-32.png meteord-128.png meteord-256.png meteord-512.png meteord-1024.png >/dev/null
# Only the sizes the installers use are kept.
rm -f meteord-16.png meteord-32.png meteord-48.png meteord-64.png meteord-1024.png
