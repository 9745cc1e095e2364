#!/bin/sh
# Installs what is missing on Debian 12 (as root) and builds dnal.
#   jobs/setup.sh [BUILDDIR [CONFIGURE_FLAGS...]]     (default: build)
# Output of the build goes to BUILDDIR/build.log; exit status 0 when built.
set -u
cd "$(dirname "$0")/.." || exit 1
top=$(pwd)
builddir=${1:-build}
[ $# -gt 0 ] && shift

packages="build-essential autoconf automake libtool pkg-config openmpi-bin libopenmpi-dev
  libdnnl-dev libhdf5-dev hdf5-tools libgsl-dev libjpeg62-turbo-dev libinih-dev
  dataset-fashion-mnist python3-h5py python3-numpy python3-matplotlib python3-pytest
  slurm-wlm munge"
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "jobs/setup.sh: missing Debian packages:$missing (run as root to install them)" >&2
        exit 1
    fi
    echo "jobs/setup.sh: installing$missing"
    apt-get update -qq >/dev/null &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
        { echo "jobs/setup.sh: apt-get install failed" >&2; exit 1; }
fi

mkdir -p "$builddir"
log="$top/$builddir/build.log"
{
    { [ -x configure ] || ./autogen.sh; } &&
        cd "$builddir" &&
        { [ -f Makefile ] || ../configure "$@"; } &&
        make -j"$(nproc 2>/dev/null || echo 2)"
} >"$log" 2>&1 || {
    tail -n 30 "$log" >&2
    echo "jobs/setup.sh: the build failed (full log: $log)" >&2
    exit 1
}
