# Sourced by the project's scripts (not run on its own).
#
# TARGET_DIR: where cargo puts what it builds. Honours CARGO_TARGET_DIR (absolute or relative
# to the checkout) and a target-dir set in a cargo config file, as cargo itself does, so that
# the scripts work for developers who keep their build folders elsewhere. Every script writes
# its own products (the Python test environment, screenshots, packages, the HIL cache) under it.
# shellcheck shell=bash
TARGET_DIR=$(cargo metadata --no-deps --format-version 1 --locked 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
if [[ -z $TARGET_DIR ]]; then
    TARGET_DIR=${CARGO_TARGET_DIR:-target}
fi
mkdir -p "$TARGET_DIR"
export TARGET_DIR

# apt, waiting for the package lock instead of failing at once: a fresh machine often runs
# unattended upgrades right after boot, and CI machines share their package database.
apt_get() {
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || { echo "need root (or sudo) to run apt-get $*" >&2; return 1; }
        sudo=(sudo)
    fi
    local attempt
    for attempt in 1 2 3 4 5; do
        if "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3 "$@"; then
            return 0
        fi
        echo "apt-get $1 failed (attempt $attempt); waiting for the package lock and trying again" >&2
        sleep $((attempt * 10))
    done
    return 1
}
