#!/bin/sh
# The error policy (docs/design.md, "Exit codes"): a failed oneDNN or MPI
# call, a failed internal assertion and exhausted memory exit 70 naming the
# source file:line (and the library's own message); HDF5 failures and an
# allocation sized by a corrupt input exit 2 naming the file; a fatal error
# on one rank of two ends both (MPI_Abort) with its exit code.
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
check "DNNL_CHECK exits 70 (internal)" "[ $rc -eq 70 ]"
check "DNNL_CHECK names file:line, the call and oneDNN's message" \
    "grep -q 'fatal_probe.c:[0-9]*: oneDNN: dnnl_stream_wait(NULL): invalid arguments' '$tmp/err'"

"$PROBE" h5 >/dev/null 2>"$tmp/err"; rc=$?
check "H5_CHECK exits 2 (input/output)" "[ $rc -eq 2 ]"
check "H5_CHECK names file:line, the call and HDF5's message" \
    "grep -q 'fatal_probe.c:[0-9]*: HDF5: H5Fopen.*unable to' '$tmp/err'"

"$PROBE" mpi >/dev/null 2>"$tmp/err"; rc=$?
check "MPI_CHECK exits 70 (internal)" "[ $rc -eq 70 ]"
check "MPI_CHECK names file:line, the call and MPI's message" \
    "grep -q 'fatal_probe.c:[0-9]*: MPI: MPI_Send.*rank' '$tmp/err'"

"$PROBE" assert >/dev/null 2>"$tmp/err"; rc=$?
check "a failed internal assertion exits 70" "[ $rc -eq 70 ]"
check "it names file:line and the condition" \
    "grep -q 'fatal_probe.c:[0-9]*: internal error: rank < 0' '$tmp/err'"

"$PROBE" oom >/dev/null 2>"$tmp/err"; rc=$?
check "exhausted memory exits 70" "[ $rc -eq 70 ]"
check "it names the size and the allocating file:line" \
    "grep -q 'fatal_probe.c:[0-9]*: out of memory allocating [0-9]* bytes' '$tmp/err'"

"$PROBE" input >/dev/null 2>"$tmp/err"; rc=$?
check "an allocation sized by a corrupt input exits 2" "[ $rc -eq 2 ]"
check "it names the file and what was sized" "grep -q 'corrupt.idx: image count' '$tmp/err'"

timeout 60 mpirun -np 2 --oversubscribe "$PROBE" fatal >/dev/null 2>"$tmp/err"; rc=$?
check "a fatal error on one rank of two ends the run with its code (2), no hang" "[ $rc -eq 2 ]"
check "the failing rank's message is printed" "grep -q 'dnal: error: rank 1: corrupt record' '$tmp/err'"

echo "1..$n"
[ $fail -eq 0 ]
