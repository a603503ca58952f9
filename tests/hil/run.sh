#!/usr/bin/env bash
# Hardware in the loop without hardware: boots a QEMU guest (stock Debian cloud kernel, TCG, no
# KVM needed) whose /init registers virtual keys through uhid and drives oathkeyd's real hidapi
# path through every scenario (tests/hil/init). Exits 0 only when every scenario passed, the
# codes the guest read match oathtool on the host, and nothing hung or panicked.
#
# Installs its own Debian packages; the kernel package is resolved from linux-image-cloud-amd64
# (never a hard-coded version) and cached under hil/ in the cargo target directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
cache=$TARGET_DIR/hil
mkdir -p "$cache"
log() { printf 'hil: %s\n' "$*" >&2; }

need=(qemu-system-x86 busybox-static cpio xz-utils zstd oathtool)
missing=()
for pkg in "${need[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt_get update -qq
    apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- the kernel -------------------------------------------------------------------------------
# The current kernel of the cloud flavour (no version written here). Package lists may be stale:
# when the version they name cannot be resolved or downloaded, refresh them once and retry.
resolve_kernel() {
    apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}
fetch_kernel() {
    rm -rf "$kdir" && mkdir -p "$kdir/root"
    (cd "$kdir" && apt-get download "$kpkg" >/dev/null 2>&1)
}
kpkg=$(resolve_kernel)
[[ -n $kpkg ]] || { apt_get update -qq && kpkg=$(resolve_kernel); }
[[ -n $kpkg ]] || { log "cannot resolve the kernel package from linux-image-cloud-amd64"; exit 1; }
kdir=$cache/$kpkg
if [[ ! -f $kdir/vmlinuz ]]; then
    log "fetching $kpkg"
    if ! fetch_kernel; then
        log "$kpkg is not downloadable; refreshing the package lists"
        apt_get update -qq
        kpkg=$(resolve_kernel)
        kdir=$cache/$kpkg
        fetch_kernel || { log "cannot download $kpkg"; exit 1; }
    fi
    dpkg -x "$kdir"/"$kpkg"_*.deb "$kdir/root"
    cp "$kdir"/root/boot/vmlinuz-* "$kdir/vmlinuz"
    mkdir -p "$kdir/modules"
    for m in hid uhid hid-generic; do
        src=$(find "$kdir/root/lib/modules" -name "$m.ko*" | head -n 1)
        [[ -n $src ]] || { log "module $m not in $kpkg"; exit 1; }
        case "$src" in
            *.xz) xz -dc "$src" > "$kdir/modules/$m.ko" ;;
            *.zst) zstd -dqc "$src" > "$kdir/modules/$m.ko" ;;
            *) cp "$src" "$kdir/modules/$m.ko" ;;
        esac
    done
    rm -rf "$kdir/root" "$kdir"/*.deb
fi

# --- static binaries ----------------------------------------------------------------------------
log "building static binaries"
export CARGO_TARGET_DIR=$cache/build
export CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=true
target=x86_64-unknown-linux-gnu
# oathkeyd without PC/SC: Debian ships no static libpcsclite, and the guest has no pcscd.
RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --locked --release --target "$target" \
    -p oathkeyd --no-default-features --features hid
RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --locked --release --target "$target" \
    -p oathkey -p oathkey-emulator
bin=$CARGO_TARGET_DIR/$target/release

# --- initramfs ----------------------------------------------------------------------------------
root=$cache/initramfs
rm -rf "$root" && mkdir -p "$root"/{bin,lib/modules,etc,proc,sys,dev,tmp,run}
cp /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"   # the shebang of /init needs it before busybox --install runs
cp "$bin/oathkeyd" "$bin/oathkey" "$bin/oathkey-emulator" "$root/bin/"
cp "$kdir"/modules/*.ko "$root/lib/modules/"
cp tests/hil/init "$root/init"
chmod 0755 "$root/init"
(cd "$root" && find . | cpio --quiet -o -H newc | gzip -1) > "$cache/initramfs.cpio.gz"

# --- boot ---------------------------------------------------------------------------------------
console=$cache/console.log
# -cpu max gives the guest RDRAND: without an entropy source getrandom() blocks for minutes
# early in boot, and the emulator's random serials and the daemon's seeds would wait on it.
log "booting the guest ($kpkg, TCG)"
set +e
timeout 300 qemu-system-x86_64 -accel tcg -cpu max -smp 1 -m 512 -nodefaults -no-user-config \
    -display none -no-reboot -serial stdio -monitor none -rtc base=utc \
    -kernel "$kdir/vmlinuz" -initrd "$cache/initramfs.cpio.gz" \
    -append "console=ttyS0 rdinit=/init panic=-1 random.trust_cpu=on quiet loglevel=4" </dev/null > "$console" 2>&1
status=$?
set -e
tr -d '\r' < "$console" > "$console.txt"

# --- verdict ------------------------------------------------------------------------------------
grep -E '^HIL_(OK|FAIL)' "$console.txt" >&2 || true
failed=0
if [[ $status -eq 124 ]]; then log "the guest hung (timeout)"; failed=1; fi
if grep -q "Kernel panic" "$console.txt"; then log "kernel panic"; failed=1; fi
if grep -q "panicked" "$console.txt"; then log "a process panicked in the guest"; failed=1; fi
if grep -q '^HIL_FAIL' "$console.txt"; then failed=1; fi
grep -q '^HIL_RESULT=0$' "$console.txt" || { log "no HIL_RESULT=0"; failed=1; }
expected=(enumerate seed-and-read touch-button two-keys unplug-during-read replug permissions)
for s in "${expected[@]}"; do
    grep -q "^HIL_OK $s\$" "$console.txt" || { log "scenario $s did not pass"; failed=1; }
done
checked=0
while read -r _ alg digits period secret t code; do
    expect=$(oathtool --totp="$alg" --digits="$digits" --time-step-size="${period}s" --now="@$t" -b "$secret")
    if [[ $code != "$expect" ]]; then
        log "code mismatch: $alg/$digits/$period at $t: guest $code, oathtool $expect"
        failed=1
    fi
    checked=$((checked + 1))
done < <(grep '^HIL_DATA ' "$console.txt")
[[ $checked -ge 10 ]] || { log "only $checked codes to check"; failed=1; }
if [[ $failed -ne 0 ]]; then
    log "FAILED; the guest's console is in $console.txt"
    exit 1
fi
log "all scenarios passed; $checked codes match oathtool"
