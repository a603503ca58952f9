#!/usr/bin/env bash
# Builds the Debian packages from the test build and checks them:
#   - contents against packaging/manifest/*.txt,
#   - systemd-analyze verify on both units,
#   - the D-Bus policy loaded by a real dbus-daemon: oathkeyd (root) may own the name, another
#     uid may not, anyone may call,
#   - the D-Bus system activation file listed by that bus,
#   - sysusers.d and tmpfiles.d applied to the throwaway root (user, groups, directories),
#   - polkit policy against polkit's DTD (xmllint) and by structure, udev rules syntax (with
#     self-tests of both checkers),
#   - the packages unpacked into a throwaway root, and the installed binaries' --version.
# Exits non-zero on the first failure. Run as root in CI (setpriv drops to uid 65534).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
here=tests/packaging
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "packaging check FAILED: $*" >&2; exit 1; }
ok() { echo "packaging: ok: $*" >&2; }

OATHKEY_DEB_PROFILE=dev packaging/build-deb.sh
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
arch=$(dpkg --print-architecture)

# --- contents ------------------------------------------------------------------------------
for pkg in oathkey oathkey-desktop; do
    deb=$TARGET_DIR/debian/${pkg}_${version}_${arch}.deb
    if [[ $pkg == oathkey-desktop && ( ! -f desktop/Cargo.toml || ${OATHKEY_DEB_DESKTOP:-1} == 0 ) ]]; then
        rm -f "$deb"
        continue
    fi
    [[ -f $deb ]] || fail "$deb missing"
    dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./||' | sort > "$work/$pkg.contents"
    if ! diff -u "packaging/manifest/$pkg.txt" "$work/$pkg.contents"; then
        fail "$pkg contents differ from packaging/manifest/$pkg.txt (update it if the change is intended)"
    fi
    ok "$pkg contents match the manifest ($(wc -l < "$work/$pkg.contents") files)"
done

# --- unpack into a throwaway root ------------------------------------------------------------
root=$work/root
mkdir -p "$root"
for deb in "$TARGET_DIR"/debian/*_"${version}"_"${arch}".deb; do
    dpkg -x "$deb" "$root"
done
"$root/usr/bin/oathkeyd" --version | grep -q "oathkeyd $version" || fail "oathkeyd --version"
"$root/usr/bin/oathkey" --version | grep -q "oathkey $version" || fail "oathkey --version"
if [[ -x $root/usr/bin/oathkey-desktop ]]; then
    "$root/usr/bin/oathkey-desktop" --version | grep -q "$version" || fail "oathkey-desktop --version"
fi
ok "installed binaries run (--version $version)"
for page in "$root"/usr/share/man/man1/oathkey.1.gz "$root"/usr/share/man/man8/oathkeyd.8.gz; do
    zcat "$page" | grep -q '^\.TH' || fail "$page is not a man page"
done
bash -n "$root/usr/share/bash-completion/completions/oathkey" || fail "bash completion syntax"
ok "man pages and completions"
for script in postinst prerm postrm; do
    sh -n "packaging/debian/$script.oathkey" || fail "$script syntax"
done
dpkg-deb -I "$TARGET_DIR"/debian/oathkey_"${version}"_"${arch}".deb postinst | grep -q systemd-sysusers || fail "postinst missing"
ok "maintainer scripts"

# --- sysusers.d and tmpfiles.d, applied to the throwaway root --------------------------------
mkdir -p "$root/etc"
systemd-sysusers --root="$root" >/dev/null 2>&1 || fail "systemd-sysusers rejects the package's sysusers.d"
grep -q '^oathkey:x:[0-9]*:[0-9]*:[^:]*:/var/lib/oathkey:/usr/sbin/nologin$' "$root/etc/passwd" \
    || fail "no oathkey service user: $(cat "$root/etc/passwd")"
grep -q '^oathkey-admin:' "$root/etc/group" || fail "no oathkey-admin group"
svc_uid=$(awk -F: '$1 == "oathkey" { print $3 }' "$root/etc/passwd")
systemd-tmpfiles --root="$root" --create >/dev/null 2>&1 || fail "systemd-tmpfiles rejects the package's tmpfiles.d"
[[ $(stat -c '%a %u' "$root/var/lib/oathkey") == "700 $svc_uid" ]] || fail "state directory: $(stat -c '%a %u' "$root/var/lib/oathkey")"
[[ $(stat -c '%a %u' "$root/run/oathkey") == "755 $svc_uid" ]] || fail "runtime directory: $(stat -c '%a %u' "$root/run/oathkey")"
ok "sysusers.d makes the oathkey user and groups; tmpfiles.d its directories (0700 state, 0755 run)"

# --- systemd ---------------------------------------------------------------------------------
if command -v systemd-analyze >/dev/null; then
    # verify wants the targets the unit refers to, the commands it runs and its man page.
    mkdir -p "$root/usr/lib/systemd/system" "$root/bin"
    cp -n /usr/lib/systemd/system/*.target "$root/usr/lib/systemd/system/" 2>/dev/null || true
    cp "$(type -P kill)" "$root/bin/kill"
    for unit in usr/lib/systemd/system/oathkeyd.service usr/lib/systemd/user/oathkeyd.service; do
        MANPATH=$root/usr/share/man systemd-analyze verify --root="$root" "$root/$unit" \
            || fail "systemd-analyze verify $unit"
    done
    exposure=$(systemd-analyze security --offline=true --root="$root" oathkeyd.service 2>/dev/null \
        | sed -n 's/.*Overall exposure level for oathkeyd.service: \([0-9.]*\).*/\1/p')
    awk -v e="$exposure" 'BEGIN { exit !(e != "" && e + 0 <= 2.0) }' \
        || fail "the service's exposure is ${exposure:-unknown}; keep it at 2.0 or below"
    ok "systemd units verify; exposure $exposure"
else
    echo "packaging: systemd-analyze not installed; units not verified" >&2
fi

# --- D-Bus policy in a real dbus-daemon ------------------------------------------------------
bus=$work/bus
cat > "$work/system.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_destination="org.freedesktop.DBus"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
  <servicedir>$root/usr/share/dbus-1/system-services</servicedir>
  <include>$root/usr/share/dbus-1/system.d/org.oathkey.Daemon1.conf</include>
</busconfig>
EOF
dbus-daemon --config-file="$work/system.conf" --nofork --nopidfile &
pids+=($!)
for _ in $(seq 100); do [[ -S $bus ]] && break; sleep 0.05; done
[[ -S $bus ]] || fail "dbus-daemon would not start with the policy included"
chmod 0777 "$bus"
chmod 0755 "$work"
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$bus
if [[ $(id -u) -eq 0 ]]; then
    # Another uid may not own the name.
    mkdir -p "$work/nobody" && chown 65534:65534 "$work/nobody"
    if setpriv --reuid=65534 --regid=65534 --clear-groups -- env DBUS_SYSTEM_BUS_ADDRESS="$DBUS_SYSTEM_BUS_ADDRESS" \
        "$root/usr/bin/oathkeyd" --user --no-hid --dbus system --socket "$work/nobody/s.sock" \
        --state-dir "$work/nobody/state" > "$work/nobody.log" 2>&1; then
        fail "uid 65534 was allowed to own org.oathkey.Daemon1"
    fi
    grep -qi "not allowed to own\|AccessDenied" "$work/nobody.log" || fail "unexpected failure: $(cat "$work/nobody.log")"
    ok "D-Bus policy: another uid may not own the name"
fi
"$root/usr/bin/oathkeyd" --user --no-hid --emulate 1 --dbus system --socket "$work/s.sock" \
    --state-dir "$work/state" > "$work/daemon.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" status org.oathkey.Daemon1 >/dev/null 2>&1 && break
    sleep 0.05
done
busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" status org.oathkey.Daemon1 >/dev/null 2>&1 \
    || fail "oathkeyd (root) could not own its name: $(cat "$work/daemon.log")"
caller=(busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" call org.oathkey.Daemon1 /org/oathkey/Daemon1/Manager org.oathkey.Manager1 ListKeys)
if [[ $(id -u) -eq 0 ]]; then
    caller=(setpriv --reuid=65534 --regid=65534 --clear-groups -- "${caller[@]}")
fi
"${caller[@]}" | grep -q '^ao 1 ' || fail "a caller could not list keys through the policy"
ok "D-Bus policy: oathkeyd owns the name, other users may call"
busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" call org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus ListActivatableNames | grep -q '"org.oathkey.Daemon1"' \
    || fail "the bus does not list org.oathkey.Daemon1 as activatable from the system activation file"
grep -q '^SystemdService=oathkeyd.service$' "$root/usr/share/dbus-1/system-services/org.oathkey.Daemon1.service" \
    || fail "the system activation file does not hand over to oathkeyd.service"
ok "D-Bus activation file loaded by the bus (activation goes through oathkeyd.service)"

# --- polkit and udev -------------------------------------------------------------------------
python3 "$here/check_polkit.py" "$root/usr/share/polkit-1/actions/org.oathkey.policy" >/dev/null \
    || fail "polkit policy"
dtd=/usr/share/polkit-1/policyconfig-1.dtd
if command -v xmllint >/dev/null && [[ -f $dtd ]]; then
    xmllint --noout --dtdvalid "$dtd" "$root/usr/share/polkit-1/actions/org.oathkey.policy" \
        || fail "the polkit policy is not valid against polkit's own DTD ($dtd)"
    ok "polkit policy valid against $dtd"
else
    echo "packaging: xmllint or polkit's DTD missing; policy checked by structure only" >&2
fi
printf 'SUBSYSTEM=="hidraw", GROUP=="oathkey"\n' > "$work/bad.rules"
if python3 "$here/check_udev.py" "$work/bad.rules" 2>/dev/null; then fail "the udev checker accepts rubbish"; fi
python3 "$here/check_udev.py" "$root/usr/lib/udev/rules.d/70-oathkey.rules" >/dev/null || fail "udev rules"
ok "polkit policy and udev rules"
printf 'polkit.addRule(function (a, s) { return polkit.Result.YES; });\n' > "$work/bad-polkit.rules"
if node "$here/check_polkit_rules.js" "$work/bad-polkit.rules" 2>/dev/null; then
    fail "the polkit rules checker accepts a rule that allows everyone everything"
fi
node "$here/check_polkit_rules.js" "$root/usr/share/polkit-1/rules.d/70-oathkey-pcsc.rules" >/dev/null \
    || fail "the pcsc-lite polkit rule does not decide as intended"
ok "pcsc-lite polkit rule: the oathkey user may use pcscd and its cards, nobody else is affected"

# --- default config parses -------------------------------------------------------------------
"$root/usr/bin/oathkeyd" --system --config "$root/etc/oathkey/oathkeyd.toml" --socket "$work/cfg.sock" \
    --state-dir "$work/cfg-state" --no-hid --dbus off --socket-group root > "$work/cfg.log" 2>&1 &
cfg_pid=$!
pids+=($cfg_pid)
for _ in $(seq 100); do [[ -S $work/cfg.sock ]] && break; sleep 0.05; done
[[ -S $work/cfg.sock ]] || fail "the packaged default config does not start: $(cat "$work/cfg.log")"
[[ $(stat -c %a "$work/cfg.sock") == 660 ]] || fail "the packaged config's socket mode is not 0660"
ok "the default config starts the daemon with a 0660 socket"
echo "packaging: all checks passed" >&2
