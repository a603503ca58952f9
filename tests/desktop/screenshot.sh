#!/usr/bin/env bash
# A real window under Xvfb: starts oathkeyd with one virtual key and three seeded tokens, opens
# oathkey-desktop on virtual X displays and takes screenshots with ImageMagick:
#
#   OUT.png              the main view: 1x, theme System (the picture in docs/ and the README)
#   OUT-1x-light.png     1x screen, --theme light      (600x640)
#   OUT-1x-dark.png      1x screen, --theme dark
#   OUT-2x-light.png     2x HiDPI screen (winit scale factor 2), --theme light  (1200x1280)
#   OUT-2x-dark.png      2x HiDPI screen, --theme dark
#   OUT-1x-zoom200-light.png  1x screen, --scale 2 --theme light: the layout at 200 % zoom in
#                        the default 600x640 window (status bar on two rows, scrolling)
#
# The six windows run at once (one Xvfb each) against the one daemon, and are shot at the same
# moment, so they show the same codes. It fails unless
# - every app logged that it connected to the daemon, and none that the daemon is not running
#   (so a "not running" screen cannot pass);
# - no screenshot is blank (colours and contrast);
# - light and dark differ: the light shots' mean brightness is well above the dark ones';
# - a 2x shot has the mean brightness of its 1x twin: the window fills the 2x screen, scaled,
#   rather than a 1x window in a corner.
#
#   tests/desktop/screenshot.sh [OUT.png] [oathkey-desktop options...]
#
# OUT.png defaults to desktop-screenshot.png in the cargo target directory. With extra options (for example --scale 2,
# or --theme dark) or BEFORE_SHOT, only one screenshot is taken, with those options, into
# OUT.png: SCALE_FACTOR=2 runs it as on a 2x screen; BEFORE_SHOT is a command run on the display
# before the screenshot (for example `xdotool mousemove 180 16 click 1` for the Admin tab). Needs
# the Debian packages xvfb and imagemagick, and the libraries the app loads at run time: libgl1,
# libglx-mesa0, libgl1-mesa-dri (Mesa's software OpenGL), libx11-xcb1, libxcursor1, libxi6,
# libxrandr2, libxkbcommon-x11-0.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

out=${1:-$TARGET_DIR/desktop-screenshot.png}
shift || true
# ImageMagick's own tools, by full path: another `convert`/`import` may come first on PATH.
IMPORT=/usr/bin/import
IDENTIFY=/usr/bin/identify

log() { printf 'screenshot: %s\n' "$*" >&2; }

for tool in Xvfb "$IMPORT" "$IDENTIFY"; do
    command -v "$tool" >/dev/null || { log "missing $tool (Debian: xvfb, imagemagick)"; exit 1; }
done

cargo build --quiet -p oathkeyd -p oathkey -p oathkey-desktop
bin=$TARGET_DIR/debug

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

# The shots: name, screen scale factor, app options.
names=()
declare -A scale_of opts_of
add_shot() {
    names+=("$1")
    scale_of[$1]=$2
    opts_of[$1]=$3
}
if (($# > 0)) || [[ -n ${BEFORE_SHOT:-} ]]; then
    add_shot main "${SCALE_FACTOR:-1}" "$*"
else
    add_shot main 1 ""
    add_shot 1x-light 1 "--theme light"
    add_shot 1x-dark 1 "--theme dark"
    add_shot 2x-light 2 "--theme light"
    add_shot 2x-dark 2 "--theme dark"
    add_shot 1x-zoom200-light 1 "--theme light --scale 2"
fi

# One Xvfb per shot (-displayfd: it picks a free display and tells its number), then the app.
declare -A display_of app_of
for name in "${names[@]}"; do
    scale=${scale_of[$name]}
    exec {fd}>"$tmp/$name.display"
    Xvfb -displayfd "$fd" -screen 0 "$((600 * scale))x$((640 * scale))x24" -nolisten tcp \
        2>"$tmp/xvfb-$name.log" &
    pids+=($!)
    exec {fd}>&-
done
for name in "${names[@]}"; do
    for _ in $(seq 100); do
        [[ -s $tmp/$name.display ]] && break
        sleep 0.1
    done
    display_of[$name]=":$(tr -d '[:space:]' <"$tmp/$name.display")"
    # shellcheck disable=SC2086 # the options are words
    DISPLAY=${display_of[$name]} WINIT_X11_SCALE_FACTOR=${scale_of[$name]} OATHKEY_LOG=info \
        "$bin/oathkey-desktop" --socket "$socket" ${opts_of[$name]} 2>"$tmp/desktop-$name.log" &
    app_of[$name]=$!
    pids+=($!)
    log "$name: Xvfb on ${display_of[$name]}, oathkey-desktop ${opts_of[$name]}"
done

shoot() { DISPLAY=${display_of[$1]} "$IMPORT" -window root "$tmp/$1.png"; }
not_blank() {
    local colors stddev
    colors=$("$IDENTIFY" -format '%k' "$1") || return 1
    stddev=$("$IDENTIFY" -format '%[fx:standard_deviation]' "$1") || return 1
    ((colors > 16)) && awk -v s="$stddev" 'BEGIN { exit !(s > 0.01) }'
}

# Wait until every window shows something and every app is connected to the daemon.
pending=("${names[@]}")
for _ in $(seq 60); do
    left=()
    for name in "${pending[@]}"; do
        kill -0 "${app_of[$name]}" 2>/dev/null || { log "$name: oathkey-desktop exited"; exit 1; }
        if grep -q "connected to oathkeyd socket=$socket" "$tmp/desktop-$name.log" &&
            shoot "$name" 2>/dev/null && not_blank "$tmp/$name.png"; then
            continue
        fi
        left+=("$name")
    done
    pending=("${left[@]}")
    ((${#pending[@]} == 0)) && break
    sleep 0.5
done
if ((${#pending[@]} > 0)); then
    log "not connected or still blank after 30 s: ${pending[*]}"
    exit 1
fi
# The codes arrive right after the connection; a moment for them to be drawn.
sleep 1.5
if [[ -n ${BEFORE_SHOT:-} ]]; then
    DISPLAY=${display_of[main]} bash -c "$BEFORE_SHOT"
    sleep 1
fi
# For a picture of the usual state, not the last seconds of a period (nor its first).
for _ in $(seq 40); do
    second=$(($(date +%s) % 30))
    ((second >= 4 && second <= 20)) && break
    sleep 0.5
done
for name in "${names[@]}"; do shoot "$name"; done

declare -A mean_of
for name in "${names[@]}"; do
    f=$tmp/$name.png
    app_log=$tmp/desktop-$name.log
    if ! grep -q "connected to oathkeyd socket=$socket" "$app_log" ||
        grep -q "is not running" "$app_log"; then
        log "$name: the app was not connected to the daemon throughout"
        exit 1
    fi
    mean_of[$name]=$("$IDENTIFY" -format '%[fx:mean]' "$f")
    log "$name: $("$IDENTIFY" -format '%wx%h, %k colours, standard deviation %[fx:standard_deviation]' "$f"), mean brightness ${mean_of[$name]}"
    if ! not_blank "$f"; then
        log "$name: the screenshot is blank"
        exit 1
    fi
done

# Every pair: the first must be brighter than the second by more than the margin ("differ"),
# or within the margin of it ("same").
check_means() {
    local kind=$1 a=$2 b=$3 margin=$4
    local ma=${mean_of[$a]} mb=${mean_of[$b]}
    if [[ $kind == differ ]]; then
        awk -v a="$ma" -v b="$mb" -v m="$margin" 'BEGIN { exit !(a - b > m) }' || {
            log "$a ($ma) is not brighter than $b ($mb) by more than $margin"
            exit 1
        }
    else
        awk -v a="$ma" -v b="$mb" -v m="$margin" 'BEGIN { d = a - b; exit !(d < m && -d < m) }' || {
            log "$a ($ma) and $b ($mb) differ by more than $margin"
            exit 1
        }
    fi
}
if [[ -n ${mean_of[1x-light]:-} ]]; then
    check_means differ 1x-light 1x-dark 0.3
    check_means differ 2x-light 2x-dark 0.3
    check_means differ 1x-zoom200-light 1x-dark 0.3
    check_means same 2x-light 1x-light 0.05
    check_means same 2x-dark 1x-dark 0.05
    log "light and dark differ at 1x and 2x; the 2x windows fill their screens"
fi

mkdir -p "$(dirname "$out")"
for name in "${names[@]}"; do
    if [[ $name == main ]]; then dest=$out; else dest=${out%.png}-$name.png; fi
    cp "$tmp/$name.png" "$dest"
    log "wrote $dest"
done
