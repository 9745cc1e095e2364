#!/bin/sh
# The test command (README): installs what is missing on Debian 12 (as root),
# builds, runs `make check` and ends with one line "N passed, N failed".
#
#   tests/run.sh              build in build/ and run the suite (Open MPI)
#   tests/run.sh --sanitize   the same in build-sanitize/ with ASan and UBSan
#   tests/run.sh --mpi=mpich  the same with MPICH in build-mpich/ (as root on
#                             Debian it installs libmpich-dev; MPICH_CC and
#                             MPICH_EXEC name another mpicc and mpiexec)
set -u
cd "$(dirname "$0")/.." || exit 1
top=$(pwd)
builddir=build
flags=""
mpi=openmpi
for arg in "$@"; do
    case "$arg" in
    --sanitize) builddir=build-sanitize; flags="--enable-sanitizers" ;;
    --mpi=openmpi) mpi=openmpi ;;
    --mpi=mpich) mpi=mpich ;;
    *) echo "usage: tests/run.sh [--sanitize] [--mpi=openmpi|mpich]" >&2; exit 1 ;;
    esac
done

finish() { # passed failed
    echo "$1 passed, $2 failed"
    [ "$2" -eq 0 ]
    exit $?
}

if [ $mpi = mpich ]; then
    # Debian's MPICH beside Open MPI: the alternatives keep Open MPI as
    # mpicc/mpiexec, so the MPICH ones are named explicitly
    mpich_cc=${MPICH_CC:-/usr/bin/mpicc.mpich}
    mpich_exec=${MPICH_EXEC:-/usr/bin/mpiexec.mpich}
    if [ ! -x "$mpich_cc" ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "tests/run.sh: installing libmpich-dev mpich"
        apt-get update -qq >/dev/null &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                libmpich-dev mpich >/dev/null || finish 0 1
    fi
    [ -x "$mpich_cc" ] && [ -x "$mpich_exec" ] ||
        { echo "tests/run.sh: no MPICH at $mpich_cc, $mpich_exec (MPICH_CC, MPICH_EXEC)" >&2; finish 0 1; }
    builddir=$(echo "$builddir" | sed 's/^build/build-mpich/')
    flags="$flags CC=$mpich_cc MPIEXEC=$mpich_exec"
fi

jobs/setup.sh "$builddir" $flags || finish 0 1
cd "$top/$builddir" || finish 0 1
rm -f test-suite.log
# ASan's leak checker reports Open MPI's and OpenMP's process-lifetime
# allocations, which are not dnal's; keep it off unless asked for. Exhausted
# memory must reach dnal's own message (exit 70), not ASan's abort
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
    make -j"$(nproc 2>/dev/null || echo 2)" check >check.log 2>&1
if [ ! -f test-suite.log ]; then
    tail -n 30 check.log
    echo "tests/run.sh: make check did not run the suite (log: $builddir/check.log)" >&2
    finish 0 1
fi
grep -h '^\(not ok\|Bail out\)' $(find tests -name '*.log') 2>/dev/null | head -n 40
grep -h '^\(ERROR\|FAIL\|XPASS\):' test-suite.log | head -n 20
count() { sed -n "s/^# $1: *\\([0-9]*\\)/\\1/p" test-suite.log | head -n 1; }
pass=$(count PASS)
fail=$(($(count FAIL) + $(count ERROR) + $(count XPASS)))
finish "${pass:-0}" "$fail"
