# install_cache.sh - sourced by tests/moto-setup.sh and tests/sdk-setup.sh: where an
# install of pinned packages (a Python venv, a node_modules tree) lives.
#
# CI runs `make test` on a clean clone, on the same machine every time, so installing
# moto and today's SDKs into the clone (pip and npm: 140 s and 110 s of a loaded run,
# beside pytest, with the tests that need them waiting) was redone on every run. An
# install is kept instead in the machine's cache, /var/cache/virga/test-installs (as
# librdkafka's build, devcloud's PostgreSQL template and the images' kernel are), in a
# directory named by the hash of everything it was installed from (the pinned file, the
# interpreter's version), and the tree's tests/.venv... becomes a symbolic link to it.
# A directory once complete never changes (a new pin is a new directory), so clones and
# worktrees share it safely; the install itself runs under a lock on the directory; a
# directory whose check fails (a package missing or at another version) is installed
# again. Without a writable cache (VIRGA_INSTALL_CACHE=none, or no permission) the
# install goes into the tree as before.

install_cache_root=${VIRGA_INSTALL_CACHE:-/var/cache/virga/test-installs}

# install_cache_dir NAME KEY: print the cache directory for NAME installed from KEY (a
# hash), or nothing when there is no writable cache.
install_cache_dir() {
    [ "$install_cache_root" != none ] || return 0
    mkdir -p "$install_cache_root" 2>/dev/null && [ -w "$install_cache_root" ] || return 0
    echo "$install_cache_root/$1-$(echo "$2" | cut -c1-16)"
}

# install_cache_lock DIR: hold an exclusive lock on DIR's install (fd 8) until the
# script ends or install_cache_unlock; bounded like the installs themselves. The lock
# file's time says when DIR was last used (install_cache_prune reads it).
install_cache_lock() {
    exec 8> "$1.lock" && touch "$1.lock" && flock -w 1200 8
}

# install_cache_prune NAME KEEP: remove NAME's other installs (another pin's) that no
# run has used for install_cache_keep_days (14), so a pin change does not leave its old
# install (a venv is 250-320 MB) on the machine for ever. One in use (its lock held) is
# left for a later run.
install_cache_keep_days=${VIRGA_INSTALL_CACHE_KEEP_DAYS:-14}
install_cache_prune() {
    for d in "$install_cache_root/$1"-*; do
        case $d in *.lock) continue ;; esac
        [ -d "$d" ] && [ "$d" != "$2" ] || continue
        [ -z "$(find "$d.lock" -mtime -"$install_cache_keep_days" 2>/dev/null)" ] || continue
        ( exec 7>> "$d.lock" && flock -n 7 && rm -rf "$d" && rm -f "$d.lock" &&
          echo "install_cache: removed $d, unused for $install_cache_keep_days days" >&2 ) || true
    done
}
install_cache_unlock() {
    exec 8>&-
}

# install_cache_link LINK DIR: make LINK (a path in the tree) a symbolic link to DIR,
# replacing an install made in the tree before (a real directory).
install_cache_link() {
    if [ -L "$1" ]; then
        [ "$(readlink "$1")" = "$2" ] && return 0
    elif [ -e "$1" ]; then
        rm -rf "$1"
    fi
    ln -sfn "$2" "$1"
}
