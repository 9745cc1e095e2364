#!/bin/sh
# The checked-call macros: a failed oneDNN, HDF5 or MPI call names the source
# file:line and carries the library's own message; HDF5 failures exit 2; a
# fatal error on one rank of two ends both (MPI_Abort) with its exit code.
# Speaks TAP. $PROBE is tests/unit/fatal_probe.
PROBE=${PROBE:-./tests/unit/fatal_probe}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader
n=0
fail=0
check() {
    n=$((n + 1))
    if eval "$2"; then echo "ok $n - $1"; else fail=$((fail + 1)); echo "not ok $n - $1"; sed 's/^/# /' "$tmp/err"; fi
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$PROBE" dnnl >/dev/null 2>"$tmp/err"; rc=$?
check "DNNL_CHECK exits 1" "[ $rc -eq 1 ]"
check "DNNL_CHECK names file:line, the call and oneDNN's message" \
    "grep -q 'fatal_probe.c:[0-9]*: oneDNN: dnnl_stream_wait(NULL): invalid arguments' '$tmp/err'"

"$PROBE" h5 >/dev/null 2>"$tmp/err"; rc=$?
check "H5_CHECK exits 2 (input/output)" "[ $rc -eq 2 ]"
check "H5_CHECK names file:line, the call and HDF5's message" \
    "grep -q 'fatal_probe.c:[0-9]*: HDF5: H5Fopen.*unable to' '$tmp/err'"

"$PROBE" mpi >/dev/null 2>"$tmp/err"; rc=$?
check "MPI_CHECK exits 1" "[ $rc -eq 1 ]"
check "MPI_CHECK names file:line, the call and MPI's message" \
    "grep -q 'fatal_probe.c:[0-9]*: MPI: MPI_Send.*rank' '$tmp/err'"

timeout 60 mpirun -np 2 --oversubscribe "$PROBE" fatal >/dev/null 2>"$tmp/err"; rc=$?
check "a fatal error on one rank of two ends the run with its code (2), no hang" "[ $rc -eq 2 ]"
check "the failing rank's message is printed" "grep -q 'dnal: error: rank 1: corrupt record' '$tmp/err'"

echo "1..$n"
[ $fail -eq 0 ]
