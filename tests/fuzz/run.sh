#!/bin/sh
# Builds the libFuzzer harnesses (tests/fuzz/fuzz_*.c) with Debian's clang,
# ASan and UBSan in build-fuzz/ and runs each for SECONDS (default 60) from
# a copy of its seed corpus; prints each target's executions and findings.
#   tests/fuzz/run.sh [SECONDS] [TARGET...]   e.g. tests/fuzz/run.sh 600 jpeg ini
# Needs clang and libfuzzer-14-dev (apt-get install clang libfuzzer-14-dev).
# Findings (crash-*, leak-*, oom-*, timeout-* files) stay in build-fuzz/findings/TARGET/.
set -u
cd "$(dirname "$0")/../.." || exit 1
top=$(pwd)
seconds=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-idx cifar shard jpeg ini ckattr}
command -v clang >/dev/null || { echo "tests/fuzz/run.sh: clang is missing" >&2; exit 1; }
[ -f /usr/lib/llvm-14/lib/libFuzzer.a ] || [ -n "$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null | grep /)" ] ||
    echo "tests/fuzz/run.sh: libfuzzer-14-dev may be missing" >&2
b=build-fuzz
mkdir -p "$b"
# configure compiles through Open MPI's mpicc: OMPI_CC makes it clang
export OMPI_CC=clang
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
{
    { [ -x configure ] || ./autogen.sh; } &&
        cd "$b" &&
        { [ -f Makefile ] || ../configure CFLAGS="-g -O1 $san -fsanitize=fuzzer-no-link" \
              LDFLAGS="$san" ac_cv_prog_c_openmp=-fopenmp=libgomp; } &&
        make -j2 libdnal_all.la &&
        for t in $targets; do make FUZZ_LDFLAGS=-fsanitize=fuzzer "tests/fuzz/fuzz_$t" || exit 1; done
} >"$top/$b/fuzz-build.log" 2>&1 || {
    tail -n 30 "$top/$b/fuzz-build.log" >&2
    echo "tests/fuzz/run.sh: the build failed (log: $b/fuzz-build.log)" >&2
    exit 1
}
cd "$top/$b" || exit 1
status=0
for t in $targets; do
    mkdir -p "corpus/$t" "findings/$t"
    cp "$top/tests/fuzz/corpus/$t/"* "corpus/$t/" 2>/dev/null
    # -fork=1: a child process fuzzes and is restarted when its memory runs
    # out. A reader's fatal error (the right answer to a bad input) leaves its
    # allocations behind, as the process would have ended: over 10^5 inputs
    # they add up to the RSS limit. Each out-of-memory input is then run
    # alone below; only one that exceeds the limits by itself is a finding.
    # A 16 MiB quarantine (256 by default) and one OpenMP thread: HDF5 and
    # the network builders allocate and free megabytes per input, and the
    # default turned each of those into fresh pages (ckattr ran 70 inputs/s)
    OMP_NUM_THREADS=1 ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=0:quarantine_size_mb=16 \
        UBSAN_OPTIONS=print_stacktrace=1 \
        "tests/fuzz/fuzz_$t" -fork=1 -ignore_ooms=1 -max_total_time="$seconds" -rss_limit_mb=2560 \
        -malloc_limit_mb=2048 -timeout=20 -close_fd_mask=2 -artifact_prefix="findings/$t/" \
        -print_final_stats=1 "corpus/$t" >"findings/$t.log" 2>&1
    rc=$?
    for oom in findings/"$t"/oom-*; do
        [ -f "$oom" ] || continue
        if ASAN_OPTIONS=detect_leaks=0 "tests/fuzz/fuzz_$t" -runs=1 -rss_limit_mb=2560 \
            -malloc_limit_mb=2048 "$oom" >"$oom.alone.log" 2>&1; then
            rm -f "$oom" "$oom.alone.log" # accumulated, not this input's own
        fi
    done
    # executions: the children's counts, summed (fork mode), else the final stat
    runs=$(sed -n 's/^#\([0-9][0-9]*\):.*/\1/p; s/^stat::number_of_executed_units: *//p' "findings/$t.log" |
        tail -n 1)
    found=$(ls "findings/$t" | grep -v '\.log$' | wc -l)
    echo "fuzz target=$t seconds=$seconds executions=${runs:-?} findings=$found exit=$rc"
    [ "$found" -eq 0 ] || status=1
done
exit $status
