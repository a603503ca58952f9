#!/usr/bin/env bash
# A real window under Xvfb: starts oathkeyd with one virtual key and three seeded tokens,
# opens oathkey-desktop on a virtual X display, takes a screenshot with ImageMagick and checks
# that it is not blank.
#
#   tests/desktop/screenshot.sh [OUT.png] [oathkey-desktop options...]
#
# OUT.png defaults to target/desktop-screenshot.png. Extra options go to oathkey-desktop
# (for example --theme dark, or --scale 2). SCALE_FACTOR=2 runs the window as on a 2x HiDPI
# screen (winit's scale factor), with a screen twice as large. BEFORE_SHOT is a command run on
# the display before the screenshot (for example `xdotool mousemove 180 16 click 1` for the
# Admin tab; needs xdotool). Needs the Debian packages xvfb and imagemagick, and the libraries
# the app loads at run time: libgl1, libglx-mesa0, libgl1-mesa-dri (Mesa's software OpenGL),
# libx11-xcb1, libxcursor1, libxi6, libxrandr2, libxkbcommon-x11-0.
set -euo pipefail
cd "$(dirname "$0")/../.."

out=${1:-target/desktop-screenshot.png}
shift || true
scale=${SCALE_FACTOR:-1}
width=$((600 * scale))
height=$((640 * scale))
# ImageMagick's own tools, by full path: another `convert`/`import` may come first on PATH.
IMPORT=/usr/bin/import
IDENTIFY=/usr/bin/identify

log() { printf 'screenshot: %s\n' "$*" >&2; }

for tool in Xvfb "$IMPORT" "$IDENTIFY"; do
    command -v "$tool" >/dev/null || { log "missing $tool (Debian: xvfb, imagemagick)"; exit 1; }
done

cargo build --quiet -p oathkeyd -p oathkey -p oathkey-desktop
bin=target/debug

tmp=$(mktemp -d)
pids=()
cleanup() {
    local status=$?
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if ((status != 0)); then
        for f in "$tmp"/*.log; do [[ -s $f ]] && { log "--- $f"; tail -n 30 "$f" >&2; }; done
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

socket=$tmp/oathkeyd.sock
export OATHKEY_SOCKET=$socket
"$bin/oathkeyd" --user --no-hid --emulate 1 --dbus off --admin-user "$(id -u)" \
    --socket "$socket" --state-dir "$tmp/state" 2>"$tmp/oathkeyd.log" &
pids+=($!)
for _ in $(seq 200); do
    "$bin/oathkey" keys >/dev/null 2>&1 && break
    sleep 0.1
done
"$bin/oathkey" keys >/dev/null

# What an admin seeds with the vendor tool, plus the two kinds that need "Get code".
# The secrets go nowhere: the daemon is private and deleted at the end.
"$bin/oathkey" token new --user alice@contoso.com >/dev/null
"$bin/oathkey" token new --user bob@contoso.com --period 60 --hash sha256 --digits 8 >/dev/null
"$bin/oathkey" token new --user carol@contoso.com --touch >/dev/null 2>"$tmp/touch.log"

# -displayfd: Xvfb picks a free display and tells its number.
exec {fd}>"$tmp/display"
Xvfb -displayfd "$fd" -screen 0 "${width}x${height}x24" -nolisten tcp 2>"$tmp/xvfb.log" &
pids+=($!)
exec {fd}>&-
for _ in $(seq 100); do
    [[ -s $tmp/display ]] && break
    sleep 0.1
done
export DISPLAY=":$(tr -d '[:space:]' <"$tmp/display")"
log "Xvfb on $DISPLAY (${width}x${height})"

WINIT_X11_SCALE_FACTOR=$scale OATHKEY_LOG=info \
    "$bin/oathkey-desktop" --socket "$socket" "$@" 2>"$tmp/desktop.log" &
desktop=$!
pids+=("$desktop")

# Wait until the window shows something, then a little more for the codes to arrive.
shot=$tmp/shot.png
for _ in $(seq 60); do
    kill -0 "$desktop" 2>/dev/null || { log "oathkey-desktop exited"; exit 1; }
    if "$IMPORT" -window root "$shot" 2>/dev/null; then
        colors=$("$IDENTIFY" -format '%k' "$shot")
        ((colors > 16)) && break
    fi
    sleep 0.5
done
sleep 2
if [[ -n ${BEFORE_SHOT:-} ]]; then
    bash -c "$BEFORE_SHOT"
    sleep 1
fi
# For a picture of the usual state, not the last seconds of a period (nor its first).
for _ in $(seq 40); do
    second=$(($(date +%s) % 30))
    ((second >= 4 && second <= 20)) && break
    sleep 0.5
done
"$IMPORT" -window root "$shot"

stddev=$("$IDENTIFY" -format '%[fx:standard_deviation]' "$shot")
colors=$("$IDENTIFY" -format '%k' "$shot")
log "standard deviation $stddev, $colors colours"
if ! awk -v s="$stddev" 'BEGIN { exit !(s > 0.01) }' || ((colors <= 16)); then
    log "the screenshot is blank"
    exit 1
fi
mkdir -p "$(dirname "$out")"
cp "$shot" "$out"
log "wrote $out"
