#!/usr/bin/env bash
# Builds the Debian packages into debian/ in the cargo target directory (target/debian/ unless
# CARGO_TARGET_DIR says otherwise):
#   oathkey_<version>_<arch>.deb          oathkeyd, oathkey, the service files, man pages, completions
#   oathkey-desktop_<version>_<arch>.deb  the desktop app
#
# OATHKEY_DEB_PROFILE picks the cargo profile: release (default), or dev to package the debug
# build the test suite has already made (CI checks the packaging without a second build).
# OATHKEY_DEB_DESKTOP=0 skips the desktop package (servers).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

profile=${OATHKEY_DEB_PROFILE:-release}
case "$profile" in
    dev) bindir=$TARGET_DIR/debug ;;
    *) bindir=$TARGET_DIR/$profile ;;
esac
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
arch=$(dpkg --print-architecture)
out=$TARGET_DIR/debian
stage=$out/stage

log() { printf 'build-deb: %s\n' "$*" >&2; }

packages=(-p oathkeyd -p oathkey)
desktop=false
if [[ -f desktop/Cargo.toml && ${OATHKEY_DEB_DESKTOP:-1} != 0 ]]; then
    packages+=(-p oathkey-desktop)
    desktop=true
fi
log "building ${packages[*]} ($profile)"
cargo build --locked --profile "$profile" "${packages[@]}"

rm -rf "$stage"
mkdir -p "$out"

# install MODE SRC DEST: a file into the staging tree.
install_to() {
    local mode=$1 src=$2 dest=$3
    install -D -m "$mode" "$src" "$dest"
}

# --- oathkey -----------------------------------------------------------------------------
root=$stage/oathkey
install_to 0755 "$bindir/oathkeyd" "$root/usr/bin/oathkeyd"
install_to 0755 "$bindir/oathkey" "$root/usr/bin/oathkey"
strip --strip-unneeded "$root/usr/bin/oathkeyd" "$root/usr/bin/oathkey" 2>/dev/null || true
install_to 0644 packaging/systemd/oathkeyd.service "$root/usr/lib/systemd/system/oathkeyd.service"
install_to 0644 packaging/systemd/user/oathkeyd.service "$root/usr/lib/systemd/user/oathkeyd.service"
install_to 0644 packaging/sysusers.d/oathkey.conf "$root/usr/lib/sysusers.d/oathkey.conf"
install_to 0644 packaging/tmpfiles.d/oathkey.conf "$root/usr/lib/tmpfiles.d/oathkey.conf"
install_to 0644 packaging/udev/70-oathkey.rules "$root/usr/lib/udev/rules.d/70-oathkey.rules"
install_to 0644 packaging/dbus/org.oathkey.Daemon1.conf "$root/usr/share/dbus-1/system.d/org.oathkey.Daemon1.conf"
install_to 0644 packaging/dbus/org.oathkey.Daemon1.service "$root/usr/share/dbus-1/system-services/org.oathkey.Daemon1.service"
install_to 0644 packaging/dbus/org.oathkey.Daemon1.session.service "$root/usr/share/dbus-1/services/org.oathkey.Daemon1.service"
install_to 0644 packaging/polkit/org.oathkey.policy "$root/usr/share/polkit-1/actions/org.oathkey.policy"
install_to 0644 packaging/polkit/70-oathkey-pcsc.rules "$root/usr/share/polkit-1/rules.d/70-oathkey-pcsc.rules"
install_to 0644 packaging/config/oathkeyd.toml "$root/etc/oathkey/oathkeyd.toml"

# Man pages and completions, generated from the command-line definitions.
assets=$stage/assets
"$root/usr/bin/oathkey" generate-assets "$assets"
"$root/usr/bin/oathkeyd" --generate-man "$assets/man"
for page in "$assets"/man/*.1; do
    gzip -9n -c "$page" > "$assets/$(basename "$page").gz"
    install_to 0644 "$assets/$(basename "$page").gz" "$root/usr/share/man/man1/$(basename "$page").gz"
done
gzip -9n -c "$assets/man/oathkeyd.8" > "$assets/oathkeyd.8.gz"
install_to 0644 "$assets/oathkeyd.8.gz" "$root/usr/share/man/man8/oathkeyd.8.gz"
install_to 0644 "$assets/completions/oathkey.bash" "$root/usr/share/bash-completion/completions/oathkey"
install_to 0644 "$assets/completions/_oathkey" "$root/usr/share/zsh/vendor-completions/_oathkey"
install_to 0644 "$assets/completions/oathkey.fish" "$root/usr/share/fish/vendor_completions.d/oathkey.fish"

doc=$root/usr/share/doc/oathkey
install_to 0644 packaging/debian/copyright "$doc/copyright"
install_to 0644 README.md "$doc/README.md"
for page in docs/*.md; do
    [[ $page == docs/desktop.md ]] && continue   # in oathkey-desktop
    install_to 0644 "$page" "$doc/$(basename "$page")"
done

install_to 0644 packaging/debian/conffiles.oathkey "$root/DEBIAN/conffiles"
for script in postinst prerm postrm; do
    install_to 0755 "packaging/debian/$script.oathkey" "$root/DEBIAN/$script"
done

# control: version, architecture, installed size.
control() {
    local template=$1 pkgroot=$2
    local size
    size=$(du -sk --exclude=DEBIAN "$pkgroot" | cut -f1)
    sed -e "s/@VERSION@/$version/g" -e "s/@ARCH@/$arch/g" "$template" > "$pkgroot/DEBIAN/control"
    echo "Installed-Size: $size" >> "$pkgroot/DEBIAN/control"
    (cd "$pkgroot" && find . -type f ! -path './DEBIAN/*' ! -path './etc/*' -printf '%P\n' | sort \
        | xargs -r md5sum > DEBIAN/md5sums)
}

control packaging/debian/control.oathkey "$root"
dpkg-deb --root-owner-group -Zxz --build "$root" "$out/oathkey_${version}_${arch}.deb" >/dev/null
log "wrote $out/oathkey_${version}_${arch}.deb"

# --- oathkey-desktop ---------------------------------------------------------------------
if $desktop; then
    root=$stage/oathkey-desktop
    install_to 0755 "$bindir/oathkey-desktop" "$root/usr/bin/oathkey-desktop"
    strip --strip-unneeded "$root/usr/bin/oathkey-desktop" 2>/dev/null || true
    install_to 0644 packaging/debian/oathkey-desktop.desktop "$root/usr/share/applications/oathkey-desktop.desktop"
    gzip -9n -c packaging/man/oathkey-desktop.1 > "$stage/oathkey-desktop.1.gz"
    install_to 0644 "$stage/oathkey-desktop.1.gz" "$root/usr/share/man/man1/oathkey-desktop.1.gz"
    install_to 0644 packaging/debian/copyright "$root/usr/share/doc/oathkey-desktop/copyright"
    install_to 0644 docs/desktop.md "$root/usr/share/doc/oathkey-desktop/desktop.md"
    mkdir -p "$root/DEBIAN"
    control packaging/debian/control.oathkey-desktop "$root"
    dpkg-deb --root-owner-group -Zxz --build "$root" "$out/oathkey-desktop_${version}_${arch}.deb" >/dev/null
    log "wrote $out/oathkey-desktop_${version}_${arch}.deb"
fi
