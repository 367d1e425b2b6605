#!/usr/bin/env bash
# Installs what bench/run.py compares against (Debian, as root or with sudo):
#   - memcached and libmemcached-dev (apt), for pylibmc's rows;
#   - perf (apt linux-perf), for bench/profile.py;
#   - ~/.cache/couchbase-lcb/sdk-venv with couchbase==4.6.3 (the official SDK, its own venv:
#     it has the same import name as this package);
#   - ~/.cache/couchbase-lcb/pylibmc-venv with pylibmc (built against libmemcached-dev).
# The binding itself and cbc-pillowfight come from scripts/dev-setup and
# scripts/install-libcouchbase. Re-running skips what is there.
set -euo pipefail

cache="${XDG_CACHE_HOME:-$HOME/.cache}/couchbase-lcb"
py="${PYTHON:-python3}"
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi

need_apt=()
command -v memcached >/dev/null || need_apt+=(memcached)
[ -e /usr/include/libmemcached/memcached.h ] || need_apt+=(libmemcached-dev)
command -v perf >/dev/null || need_apt+=(linux-perf)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "bench/setup.sh: apt-get install ${need_apt[*]}"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

make_venv() {  # dir, pip spec, module to import
    local dir="$1" spec="$2" module="$3"
    if [ -x "$dir/bin/python" ] && (cd / && env -u PYTHONPATH "$dir/bin/python" -c "import $module" 2>/dev/null); then
        echo "bench/setup.sh: $dir has $spec"
        return
    fi
    echo "bench/setup.sh: creating $dir with $spec"
    "$py" -m venv "$dir"
    (cd / && env -u PYTHONPATH "$dir/bin/python" -m pip install -q "$spec")
}

mkdir -p "$cache"
make_venv "$cache/sdk-venv" "couchbase==4.6.3" couchbase.cluster
make_venv "$cache/pylibmc-venv" "pylibmc" pylibmc
command -v cbc-pillowfight >/dev/null || echo "bench/setup.sh: cbc-pillowfight missing: run scripts/install-libcouchbase"
echo "bench/setup.sh: ready"
