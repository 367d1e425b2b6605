#!/usr/bin/env bash
# Installs what bench/run.py compares against (Debian, as root or with sudo):
#   - memcached and libmemcached-dev (apt), for pylibmc's rows;
#   - perf (apt linux-perf), for bench/profile.py;
#   - the official SDK and pylibmc (built against libmemcached-dev), each in a venv of its
#     own, at the versions requirements/peers.txt pins (tools/peers.py makes them).
# The binding itself and cbc-pillowfight come from scripts/dev-setup and
# scripts/install-libcouchbase. Re-running skips what is there.
set -euo pipefail

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

"$py" "$(dirname "$0")/../tools/peers.py"
