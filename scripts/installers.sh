#!/usr/bin/env bash
# Cross-build meteord for every packaged target, build the installers, and
# smoke-test what they install:
#
#   x86_64 Linux   .deb installed for real with dpkg (the whole lifecycle:
#                  install, upgrade, remove, purge); the installed binary,
#                  run as the meteord user, passes the protocol smoke test
#   aarch64 Linux  .deb; the binary passes the smoke test under qemu-user
#   armv7 Linux    .deb; the binary passes the smoke test under qemu-user
#   Windows x64    .exe passes the smoke test under Wine; the .msi installs
#                  and uninstalls under Wine, and the installed .exe passes
#                  it as the Start-menu shortcut runs it; `meteord service
#                  install|start|stop|uninstall` and the .msi's Service feature
#                  run the Windows service under Wine (publish, subscribe,
#                  graceful stop, removal)
#
# Artifacts go to target/dist/. macOS is built by .github/workflows/macos.yml
# on a Mac (see INSTALL.md).
#
#   scripts/installers.sh              # CI: the quick dist-check profile
#   scripts/installers.sh --release    # the tuned release profile
#   scripts/installers.sh --build-only [TARGET...]
#                                      # only the cross builds (of TARGETs)
#   scripts/installers.sh --packages   # the Debian packages this needs
#
# Installs missing Debian packages and rustup targets first (as root).
# The .deb check installs the package on this machine, so run this where
# that is acceptable (CI's throwaway container, or a development machine).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# Cargo features per kind of build. Server builds (the Linux packages) run
# headless; desktop builds (Windows, macOS) have the tray icon.
SERVER_FEATURES=""
DESKTOP_FEATURES="--features tray"

PACKAGES=(
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross
    gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
    gcc-mingw-w64-x86-64 qemu-user wine wine64 wixl msitools adduser
)
HOST_TARGET=x86_64-unknown-linux-gnu

PROFILE=dist-check
build_only=no
only=()
while [ $# -gt 0 ]; do
    case "$1" in
    --release) PROFILE=release ;;
    --build-only) build_only=yes ;;
    --packages)
        echo "${PACKAGES[*]}"
        exit 0
        ;;
    -*)
        echo "installers.sh: unknown option $1" >&2
        exit 2
        ;;
    *) only+=("$1") ;;
    esac
    shift
done
if [ ${#only[@]} -gt 0 ] && [ "$build_only" = no ]; then
    echo "installers.sh: targets are chosen only with --build-only" >&2
    exit 2
fi
TARGET_DIR=${CARGO_TARGET_DIR:-target}
DIST=$TARGET_DIR/dist
LINUX_TARGETS=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)
WINDOWS_TARGET=x86_64-pc-windows-gnu

started=$SECONDS
step() { echo "== [$((SECONDS - started))s] $*"; }
trap 'echo "installers.sh: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

# --- tools -----------------------------------------------------------------

ALL_TARGETS=("${LINUX_TARGETS[@]}" "$WINDOWS_TARGET")
[ ${#only[@]} -gt 0 ] || only=("${ALL_TARGETS[@]}")
# This machine's own build needs no cross tools.
if [ "$build_only" = yes ] && [ "${only[*]}" = "$HOST_TARGET" ]; then
    PACKAGES=()
fi
missing=()
for pkg in "${PACKAGES[@]+"${PACKAGES[@]}"}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    step "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
installed_targets=$(rustup target list --installed)
for target in "${only[@]}"; do
    grep -qx "$target" <<<"$installed_targets" || rustup target add "$target"
done

# --- build -----------------------------------------------------------------

binary() { # target -> path of its built binary
    local exe=meteord
    [ "$1" = "$WINDOWS_TARGET" ] && exe=meteord.exe
    echo "$TARGET_DIR/$1/$PROFILE/$exe"
}

for target in "${only[@]}"; do
    features=$SERVER_FEATURES
    [ "$target" = "$WINDOWS_TARGET" ] && features=$DESKTOP_FEATURES
    step "cargo build --profile $PROFILE --target $target $features"
    # shellcheck disable=SC2086 # features are words
    cargo build --locked --quiet --profile "$PROFILE" --bin meteord --target "$target" $features
done

[ "$build_only" = no ] || exit 0

# The smoke test itself is a host test; build it once up front.
cargo test --locked --quiet ${HOST_FEATURES:-} --test smoke --no-run

# --- how each binary runs here -----------------------------------------------

WINEPREFIX=$(mktemp -d)/wine
export WINEPREFIX WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
cleanup() {
    wineserver -k 2>/dev/null || true
    rm -rf "$(dirname "$WINEPREFIX")"
}
trap cleanup EXIT

runner() { # target -> command prefix that runs its binaries on this machine
    case "$1" in
    x86_64-unknown-linux-gnu) echo "" ;;
    aarch64-unknown-linux-gnu) echo "qemu-aarch64 -L /usr/aarch64-linux-gnu" ;;
    armv7-unknown-linux-gnueabihf) echo "qemu-arm -L /usr/arm-linux-gnueabihf" ;;
    "$WINDOWS_TARGET") echo "wine" ;;
    esac
}

# Options the installed program is started with when the binary knows
# them: the log directory and, for a service (no desktop), no tray icon.
# Read from --help so the packages follow the code.
launch_args() { # target log-directory service|desktop
    local help args=""
    # shellcheck disable=SC2046 # the runner is words
    help=$($(runner "$1") "$(binary "$1")" --help)
    if grep -q -- '-LogDirectory' <<<"$help"; then args+=" -LogDirectory $2"; fi
    if [ "$3" = service ] && grep -q -- '--no-tray' <<<"$help"; then args+=" --no-tray"; fi
    echo "${args# }"
}

smoke() { # description, then VAR=value settings for tests/smoke.rs
    local what=$1
    shift
    step "smoke test: $what"
    env "$@" cargo test --locked --quiet ${HOST_FEATURES:-} --test smoke
}

step "preparing Wine"
wineboot --init >/dev/null 2>&1
# Debian's Wine 8 lacks bcryptprimitives.dll, which every Rust program
# imports; a stub (installers/windows/bcryptprimitives.c) stands in.
x86_64-w64-mingw32-gcc -shared -O2 -s -o "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" \
    installers/windows/bcryptprimitives.c installers/windows/bcryptprimitives.def -ladvapi32

# --- packages ----------------------------------------------------------------

rm -rf "$DIST"
mkdir -p "$DIST"
debs=()
for target in "${LINUX_TARGETS[@]}"; do
    step "package $target"
    debs+=("$(installers/linux/build-deb.sh "$target" "$(binary "$target")" "$DIST" \
        "$(launch_args "$target" /var/log/meteord service)")")
done
step "package $WINDOWS_TARGET"
cp "$(binary "$WINDOWS_TARGET")" "$DIST/meteord.exe"
msi=$(installers/windows/build-msi.sh "$DIST/meteord.exe" "$DIST" \
    "$(launch_args "$WINDOWS_TARGET" logs desktop)")
msiinfo export "$msi" Shortcut | grep -q '^StartShortcut'
msiinfo export "$msi" Feature | grep -q '^Autostart'
msiinfo export "$msi" ServiceInstall | grep -q '^MeteordService'
(cd "$DIST" && sha256sum -- *.deb *.msi meteord.exe >SHA256SUMS)

# --- cross builds under emulation --------------------------------------------

for target in aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf; do
    smoke "$target under qemu-user" METEORD_SMOKE_BIN="$(binary "$target")" \
        METEORD_SMOKE_RUNNER="$(runner "$target")"
done
smoke "meteord.exe under Wine" METEORD_SMOKE_BIN="$DIST/meteord.exe" METEORD_SMOKE_RUNNER=wine

# --- the .msi under Wine -------------------------------------------------------

step "msiexec /i (with the autostart feature)"
wine msiexec /i "$msi" /qn ADDLOCAL=Main,Autostart
program_files="$WINEPREFIX/drive_c/Program Files/meteord"
program_files_test="$WINEPREFIX/drive_c/meteord-test"
mkdir -p "$program_files_test"
program_data="$WINEPREFIX/drive_c/ProgramData/meteord"
test -f "$program_files/meteord.exe"
test -f "$program_files/meteord.conf.example"
test -d "$program_data"
# Wine puts "all users" shortcuts in the installing user's menu.
find "$WINEPREFIX/drive_c" -path '*/Start Menu/Programs/meteord/meteord.lnk' | grep -q .
find "$WINEPREFIX/drive_c" -path '*/Start Menu/Programs/StartUp/meteord.lnk' | grep -q .
# As the shortcuts run it, with the example made the configuration.
cp "$program_files/meteord.conf.example" "$program_data/meteord.conf"
smoke "the installed meteord.exe, as its shortcuts run it" \
    METEORD_SMOKE_BIN="$program_files/meteord.exe" METEORD_SMOKE_RUNNER=wine \
    METEORD_SMOKE_DIR="$program_data" METEORD_SMOKE_CONFIG=meteord.conf METEORD_SMOKE_DATA=.
step "msiexec /x: the program goes, the configuration and the data stay"
wine msiexec /x "$msi" /qn
test ! -e "$program_files/meteord.exe"
if find "$WINEPREFIX/drive_c" -name meteord.lnk | grep -q .; then
    echo "installers.sh: shortcuts outlived the uninstall" >&2
    exit 1
fi
test -f "$program_data/meteord.conf"
test -f "$program_data/meteord.db"

# --- the Windows service under Wine ------------------------------------------------

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# The service reads C:\ProgramData\meteord\meteord.conf: the example, on
# ports of its own (free ones), subscribers on loopback.
service_config() {
    svc_control=$(free_port) svc_sub=$(free_port) svc_admin=$(free_port)
    # Global keys go before the first [mode] section.
    printf 'ControllerPort %s\nSubscriberPort %s\nSubscriberIP 127.0.0.1\nAdminPort %s\n' \
        "$svc_control" "$svc_sub" "$svc_admin" >"$program_data/meteord.conf"
    grep -vE '^(ControllerPort|SubscriberPort|SubscriberIP|AdminPort)\b' "$root/assets/meteord.conf" >>"$program_data/meteord.conf"
}
control_line() { # port line -> the reply
    exec 5<>"/dev/tcp/127.0.0.1/$1"
    printf '%s\r\nQUIT\r\n' "$2" >&5
    local reply
    IFS= read -r -t 5 reply <&5 || true
    exec 5<&- 5>&-
    printf '%s' "${reply%$'\r'}"
}
wait_port() { for _ in $(seq 300); do (exec 6<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
service_serves() { # publish, then read it back as a subscriber
    wait_port "$svc_control" || { echo "installers.sh: the service does not listen" >&2; cat "$program_data"/logs/*.log >&2 || true; return 1; }
    [[ "$(control_line "$svc_control" "ADDMESSAGE svc $1")" == OK$'\t'* ]]
    curl -fsS "http://127.0.0.1:$svc_sub/push/h1/simplepoll/svc.b5" | grep -q "$1"
}

step "meteord.exe service install / start: publish and subscribe / stop / uninstall"
service_config
cp "$DIST/meteord.exe" "$program_files_test/meteord.exe"
wine "$program_files_test/meteord.exe" service install | grep -q "service 'meteord' installed"
# Wine's service manager sees a new service only once it has restarted:
# wait for this Wine session to end.
wineserver -w
wine "$program_files_test/meteord.exe" service start | grep -q "Running"
service_serves "from-the-service"
test -s "$program_data/admin-url"
wine "$program_files_test/meteord.exe" service stop | grep -q "Stopped"
grep -q "shutdown complete" "$program_data"/logs/meteord.*.log
wine "$program_files_test/meteord.exe" service uninstall | grep -q "removed"
if wine sc query meteord >/dev/null 2>&1; then
    echo "installers.sh: the service outlived 'meteord service uninstall'" >&2
    exit 1
fi

step "msiexec /i ADDLOCAL=Main,Service: the .msi installs and starts the service; /x removes it"
service_config
wine msiexec /i "$msi" /qn ADDLOCAL=Main,Service
wineserver -w
test -f "$program_files/service/meteord.exe"
test -f "$program_files/service/meteord-package"
wine sc query meteord | grep -q RUNNING || wine "$program_files/service/meteord.exe" service start >/dev/null
service_serves "from-the-msi-service"
wine msiexec /x "$msi" /qn
test ! -e "$program_files/service/meteord.exe"
if wine sc query meteord >/dev/null 2>&1; then
    echo "installers.sh: the service outlived the uninstall" >&2
    exit 1
fi
test -f "$program_data/meteord.db"

# --- the amd64 .deb, installed for real ------------------------------------------

deb=${debs[0]}
# One package test at a time on a shared machine.
exec 9>/var/lock/meteord-installers.lock
flock 9
step "dpkg -i $deb"
if dpkg-query -W -f='${Status}' meteord 2>/dev/null | grep -q "install ok installed"; then
    echo "installers.sh: meteord is installed on this machine; not testing the package over it" >&2
    exit 1
fi
# Directories left by running meteord as root outside the package (its
# default data directory is /var/lib/meteord) are put aside for the test
# and put back afterwards: the test ends with a purge.
aside=$(mktemp -d)
for dir in /var/lib/meteord /var/log/meteord /etc/meteord; do
    if [ -e "$dir" ]; then mv "$dir" "$aside/${dir//\//_}"; fi
done
installed=no
put_back() {
    # A failed run still leaves the machine as it found it.
    if [ "$installed" = yes ]; then dpkg --purge meteord >/dev/null 2>&1 || true; fi
    for saved in "$aside"/*; do
        [ -e "$saved" ] || continue
        dir=$(basename "$saved")
        dir=${dir//_//}
        if [ -e "$dir" ]; then
            echo "installers.sh: $dir exists again; its earlier contents are in $saved" >&2
        else
            mv "$saved" "$dir"
        fi
    done
    rmdir "$aside" 2>/dev/null || true
}
trap 'put_back; cleanup' EXIT
# Leftovers of an earlier removal (configuration files) go too.
dpkg --purge meteord >/dev/null 2>&1 || true
installed=yes
install_log=$(mktemp)
dpkg -i "$deb" | tee "$install_log"
getent passwd meteord >/dev/null
test "$(stat -c %U:%a /var/lib/meteord)" = meteord:700
# A first installation prints the first-run setup code, kept 0600.
test "$(stat -c %U:%a /var/lib/meteord/setup-code)" = meteord:600
grep -q "setup code:" "$install_log"
grep -q "$(cat /var/lib/meteord/setup-code)" "$install_log"
rm "$install_log"
test "$(stat -c %U:%a /var/log/meteord)" = meteord:750
test -L /etc/systemd/system/multi-user.target.wants/meteord.service
if command -v systemd-analyze >/dev/null; then
    systemd-analyze verify /lib/systemd/system/meteord.service
fi
smoke "the installed package, as the meteord user" \
    METEORD_SMOKE_BIN=/usr/bin/meteord \
    METEORD_SMOKE_RUNNER="setpriv --reuid=meteord --regid=meteord --init-groups" \
    METEORD_SMOKE_CONFIG=/etc/meteord/meteord.conf METEORD_SMOKE_DATA=/var/lib/meteord
# The server wrote its database as the service user.
test "$(stat -c %U /var/lib/meteord/meteord.db)" = meteord

step "upgrade (reinstall): the edited configuration and the data stay"
echo "# edited by the administrator" >>/etc/meteord/meteord.conf
dpkg -i "$deb"
grep -q "edited by the administrator" /etc/meteord/meteord.conf
test -f /var/lib/meteord/meteord.db

step "dpkg --remove keeps configuration and data; --purge deletes them"
dpkg --remove meteord >/dev/null
test ! -e /usr/bin/meteord
test -f /etc/meteord/meteord.conf
test -f /var/lib/meteord/meteord.db
dpkg --purge meteord >/dev/null
test ! -e /etc/meteord
test ! -e /var/lib/meteord
test ! -e /var/log/meteord
test ! -e /etc/systemd/system/multi-user.target.wants/meteord.service
installed=no
put_back
trap cleanup EXIT
flock -u 9

step "done ($PROFILE profile); artifacts in $DIST:"
ls -l "$DIST"
