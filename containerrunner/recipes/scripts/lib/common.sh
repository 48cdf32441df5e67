# Shared by the project's scripts: paths, logging, and the engine environment.
# Source it; it defines functions and exports CONTAINERS_CONF when the project wrote one.

CR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CR_CONFIG_DIR="${XDG_CONFIG_HOME:-$HOME/.config}/containerrunner"
CR_STATE_DIR="${XDG_STATE_HOME:-$HOME/.local/state}/containerrunner"
CR_CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/containerrunner"
CR_CONTAINERS_CONF="$CR_CONFIG_DIR/containers.conf"

# Where the image recipes are: containerrunner/recipes/ (ee/, base/, network-ee/, scripts/,
# expected-ids) in the installed package and in the source tree (whose Containerfile and
# images/ at the root are links into it).
if [ -f "$CR_ROOT/ee/Containerfile" ]; then
    CR_RECIPES="$CR_ROOT"
else
    CR_RECIPES="$CR_ROOT/containerrunner/recipes"
fi
CR_EE_RECIPE="$CR_RECIPES/ee"
CR_BASE_RECIPE="$CR_RECIPES/base"
CR_NETWORK_EE_RECIPE="$CR_RECIPES/network-ee"

# The images the project builds (scripts/build-images) and the tests use.
CR_BASE_IMAGE="localhost/containerrunner-base:bookworm"
CR_EE_IMAGE="localhost/containerrunner-ee:latest"
CR_NETWORK_EE_IMAGE="localhost/network-ee:latest"
CR_PROBE_IMAGE="localhost/containerrunner-probe:latest"

say()  { printf '%s %s\n' "[${CR_SCRIPT:-containerrunner}]" "$*" >&2; }
die()  { printf '%s ERROR: %s\n' "[${CR_SCRIPT:-containerrunner}]" "$*" >&2; exit 1; }

# Run a named step; on failure say which step failed and show the tail of its log.
step() {
    local name="$1"; shift
    local log="$CR_STATE_DIR/logs/${name//[^A-Za-z0-9._-]/-}.log"
    mkdir -p "$CR_STATE_DIR/logs"
    if ! "$@" >"$log" 2>&1; then
        printf '%s ERROR: step "%s" failed (%s); last lines of %s:\n' \
            "[${CR_SCRIPT:-containerrunner}]" "$name" "$*" "$log" >&2
        tail -n 25 "$log" >&2
        exit 1
    fi
}

# Install Debian packages as one named step (no recommends, no prompts); the caller has run
# `apt-get update` where the lists may be stale.
apt_install() {
    step "apt-get install $*" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "$@"
}

# podman reads CONTAINERS_CONF; export the project's file when setup-engine wrote one.
if [ -z "${CONTAINERS_CONF:-}" ] && [ -f "$CR_CONTAINERS_CONF" ]; then
    export CONTAINERS_CONF="$CR_CONTAINERS_CONF"
fi

have() { command -v "$1" >/dev/null 2>&1; }
podman_ok() { have podman && timeout 30 podman version >/dev/null 2>&1; }
docker_ok() { have docker && timeout 30 docker version >/dev/null 2>&1; }
