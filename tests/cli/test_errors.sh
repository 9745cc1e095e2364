#!/bin/sh
# The error policy (docs/design.md, "Exit codes"): a failed oneDNN or MPI
# call, a failed internal assertion and exhausted memory exit 70 naming the
# source file:line (and the library's own message); HDF5 failures and an
# allocation sized by a corrupt input exit 2 naming the file; a fatal error
# on one rank of two ends both (MPI_Abort) with its exit code.
# Speaks TAP. $PROBE is tests/unit/fatal_probe.
PROBE=${PROBE:-./tests/unit/fatal_probe}
. "$(dirname "$0")/../mpi.sh"
export OMPI_MCA_btl=self,vader
n=0
fail=0
check() {
    n=$((n + 1))
    if eval "$2"; then echo "ok $n - $1"; else fail=$((fail + 1)); echo "not ok $n - $1"; sed 's/^/# /' "$tmp/err"; fi
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# probe WHAT CODE PATTERN WHO: fatal_probe WHAT exits CODE and its message
# matches PATTERN (dnal's file:line for the internal ones)
probe() {
    "$PROBE" "$1" >/dev/null 2>"$tmp/err"
    rc=$?
    check "$4 exits $2" "[ $rc -eq $2 ]"
    check "$4: the message names what failed and where ($3)" "grep -q '$3' '$tmp/err'"
}
probe dnnl 70 'fatal_probe.c:[0-9]*: oneDNN: dnnl_stream_wait(NULL): invalid arguments' \
    "a failed oneDNN call (DNNL_CHECK)"
probe h5 2 'fatal_probe.c:[0-9]*: HDF5: H5Fopen.*unable to' "a failed HDF5 call (H5_CHECK, input/output)"
probe mpi 70 'fatal_probe.c:[0-9]*: MPI: MPI_Send.*rank' "a failed MPI call (MPI_CHECK)"
probe assert 70 'fatal_probe.c:[0-9]*: internal error: rank < 0' "a failed internal assertion"
probe oom 70 'fatal_probe.c:[0-9]*: out of memory allocating [0-9]* bytes' "exhausted memory"
probe input 2 'corrupt.idx: image count' "an allocation sized by a corrupt input"

timeout 60 "$MPIEXEC" -n 2 $mpi_opts "$PROBE" fatal >/dev/null 2>"$tmp/err"; rc=$?
check "a fatal error on one rank of two ends the run with its code (2), no hang" "[ $rc -eq 2 ]"
check "the failing rank's message is printed" "grep -q 'dnal: error: rank 1: corrupt record' '$tmp/err'"

# a fatal error in a worker thread is handed to the main thread (MPI is
# initialised FUNNELED: only the main thread may end it through MPI)
probe thread 2 'dnal: error: worker thread: corrupt record' "a fatal error in a worker pthread"
probe omp 2 'dnal: error: worker thread: corrupt record' "a fatal error in an OpenMP thread"
timeout 60 mpirun -np 2 --oversubscribe "$PROBE" thread >/dev/null 2>"$tmp/err"; rc=$?
check "a worker thread's fatal error on one rank of two ends both with its code (2), no hang" \
    "[ $rc -eq 2 ] && grep -q 'worker thread: corrupt record' '$tmp/err'"

echo "1..$n"
[ $fail -eq 0 ]
