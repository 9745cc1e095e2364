#!/bin/sh
# The dnal command line: help, info, and usage errors (exit 1 with a message).
# Speaks TAP. $DNAL is the binary under test.
DNAL=${DNAL:-./dnal}
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"; }
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$DNAL" --help >"$tmp/help" 2>&1; rc=$?
check "dnal --help exits 0" "[ $rc -eq 0 ]"
check "dnal --help lists info" "grep -q '^  info' '$tmp/help'"

"$DNAL" info --help >"$tmp/ih" 2>&1; rc=$?
check "dnal info --help exits 0 and shows usage" "[ $rc -eq 0 ] && grep -q 'usage: dnal info' '$tmp/ih'"

"$DNAL" info >"$tmp/info" 2>&1; rc=$?
check "dnal info exits 0" "[ $rc -eq 0 ]"
for key in dnal_version onednn_version onednn_isa omp_threads mpi_library hdf5_version gsl_version; do
    check "dnal info prints $key" "grep -q '^$key=.' '$tmp/info'"
done
check "dnal info reports oneDNN 2.x" "grep -q '^onednn_version=2\.' '$tmp/info'"
check "dnal info reports the OpenMP threads (OMP_NUM_THREADS=3)" \
    "OMP_NUM_THREADS=3 '$DNAL' info | grep -q '^omp_threads=3$'"

"$DNAL" frobnicate >"$tmp/out" 2>"$tmp/err"; rc=$?
check "unknown subcommand exits 1" "[ $rc -eq 1 ]"
check "unknown subcommand is named in the message" "grep -q \"unknown subcommand 'frobnicate'\" '$tmp/err'"

"$DNAL" info --bogus >"$tmp/out" 2>"$tmp/err"; rc=$?
check "unknown flag exits 1" "[ $rc -eq 1 ]"
check "unknown flag is named in the message" "grep -q -- \"--bogus\" '$tmp/err'"

"$DNAL" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "no subcommand exits 1 with usage" "[ $rc -eq 1 ] && grep -q '^usage: dnal' '$tmp/err'"

echo "1..$n"
[ $fail -eq 0 ]
