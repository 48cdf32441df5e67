# The image locks of scripts/build-images: what every input of an image is, to the byte where
# it can be. Source it (after common.sh); it only defines functions.
#
#   Python lock (ee/requirements*.lock, network-ee/*.lock): one `name==version --hash=sha256:H`
#     line per wheel, transitive dependencies included, sorted, after `#` header lines; pip
#     installs it with --require-hashes --no-deps.
#   Debian manifest (base/packages.lock): one `package=version` line per installed package of
#     the mmdebstrap rootfs, sorted.

# lock_of_wheels DIR [SKIP_LOCK]: the lock lines of the wheels in DIR, leaving out the pins that
# SKIP_LOCK has already (the network EE's lock holds what it adds to the EE's).
lock_of_wheels() {
    local dir="$1" skip="${2:-/dev/null}" f base name rest version
    for f in "$dir"/*.whl; do
        [ -e "$f" ] || continue
        base="${f##*/}"
        name="${base%%-*}"
        rest="${base#*-}"
        version="${rest%%-*}"
        name="${name,,}"
        printf '%s==%s --hash=sha256:%s\n' "${name//_/-}" "$version" \
            "$(sha256sum "$f" | cut -d' ' -f1)"
    done | LC_ALL=C sort -t= -k1,1 | { grep -vxF -f <(lock_pins "$skip") || true; }
}

# lock_pins LOCK: the pin lines of a lock without its header comments.
lock_pins() { grep -v '^\s*\(#\|$\)' "$1" || true; }

# lock_constraints LOCK: `name==version` of each pin (a pip constraints file).
lock_constraints() { lock_pins "$1" | cut -d' ' -f1; }

# lock_header LOCK KEY: the value of a `# KEY: value` header line.
lock_header() { sed -n "s/^# $2: //p" "$1" | head -n 1; }

# lock_digest FILE: the sha256 of a lock file, as it appears in the image labels.
lock_digest() { printf 'sha256:%s' "$(sha256sum "$1" | cut -d' ' -f1)"; }

# debian_manifest ROOTFS_TAR: `package=version` of every installed package in the rootfs.
debian_manifest() {
    tar -xOf "$1" ./var/lib/dpkg/status | awk '
        /^Package: / { p = $2 }
        /^Version: / { v = $2 }
        /^Status: / { s = $0 }
        /^$/ { if (p != "" && s ~ / installed$/) print p "=" v; p = v = s = "" }
        END { if (p != "" && s ~ / installed$/) print p "=" v }' | LC_ALL=C sort
}

# manifest_changes LOCKED NEW: one line per package whose version differs between two
# manifests (or that only one has); nothing when they agree.
manifest_changes() {
    LC_ALL=C join -t= -a1 -a2 -e '(none)' -o 0,1.2,2.2 \
        <(grep -v '^\s*\(#\|$\)' "$1" | LC_ALL=C sort -t= -k1,1) \
        <(grep -v '^\s*\(#\|$\)' "$2" | LC_ALL=C sort -t= -k1,1) \
        | awk -F= '$2 != $3 { print $1 ": locked " $2 ", the mirror now gives " $3 }'
}

# record_ids FILE ARCH "IMAGE ID"...: FILE's content (expected-ids: `IMAGE ARCH ID` lines) with
# these images' IDs for ARCH replaced or added; other images and machines keep theirs.
record_ids() {
    local file="$1" arch="$2" entry; shift 2
    printf '# The image IDs the committed locks give (IMAGE ARCH ID), recorded by\n'
    printf '# scripts/build-images --verify; every build says whether it produced them.\n'
    {
        [ ! -f "$file" ] || grep -v '^\s*\(#\|$\)' "$file" | awk -v a="$arch" -v drop="$*" '
            BEGIN { n = split(drop, d, " "); for (i = 1; i <= n; i += 2) skip[d[i]] = 1 }
            !($2 == a && ($1 in skip))'
        for entry in "$@"; do printf '%s %s %s\n' "${entry%% *}" "$arch" "${entry#* }"; done
    } | LC_ALL=C sort -k2,2 -k1,1
}
