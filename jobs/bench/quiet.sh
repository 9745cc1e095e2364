# Sourced by the benchmark scripts: how much of the machine other processes
# took while a measurement ran, and waiting for a quiet machine first. Two
# threads on cores another process also uses run many times slower, not 30%
# slower, so a measurement is only worth its `others` (the share of the
# machine's CPU time not this script's children's since `mark`).
#   mark; COMMAND; others    -> $o, e.g. 0.03
#   wait_quiet               waits (at most QUIET_WAIT s, default 900) until
#                            others stay under MAX_OTHERS (default 0.1) for 5 s
#   above X                  X > MAX_OTHERS
# Needs $tmp, a folder of the caller's (it keeps $tmp/quiet.times there).
max_others=${MAX_OTHERS:-0.1}
quiet_wait=${QUIET_WAIT:-900}
hz=$(getconf CLK_TCK)
cpus=$(nproc)
machine_cpu() { awk -v hz="$hz" '$1 == "cpu" { printf "%.2f\n", ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat; }
own_cpu() { awk 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, t, "m"); s += t[1] * 60 + t[2] } print s }' "$tmp/quiet.times"; }
wall() { cut -d' ' -f1 /proc/uptime; }
mark() {
    times >"$tmp/quiet.times"
    m0=$(machine_cpu) o0=$(own_cpu) w0=$(wall)
}
others() {
    times >"$tmp/quiet.times"
    o=$(awk -v m="$(machine_cpu)" -v m0="$m0" -v o="$(own_cpu)" -v o0="$o0" -v w="$(wall)" -v w0="$w0" -v n="$cpus" \
        'BEGIN { s = (m - m0 - (o - o0)) / ((w - w0) * n); printf "%.2f\n", s < 0 ? 0 : s }')
}
above() { awk -v a="$1" -v b="$max_others" 'BEGIN { exit !(a > b) }'; }
wait_quiet() {
    waited=0
    while :; do
        mark
        sleep 5
        others
        if ! above "$o"; then
            [ "$waited" -eq 0 ] || echo "wait ${waited}s for others under $max_others"
            return 0
        fi
        if [ "$waited" -ge "$quiet_wait" ]; then
            echo "wait others=$o after ${waited}s: measuring anyway"
            return 0
        fi
        sleep 25
        waited=$((waited + 30))
    done
}
# niced CMD...: CMD at the niceness BENCH_NICE (e.g. -19, as root), in a
# session of its own whose autogroup takes that niceness too: with the
# kernel's autogroups (sched_autogroup_enabled) CPU time is shared between
# sessions first, so a plain nice counts only against this script's own
# processes (resnet20, 2 threads, beside a fuzzer and a 2-rank search in
# other sessions: 564 ms a step with nice -19 alone, 143 ms with the
# session's autogroup at -19); unset: as is
niced() {
    if [ -n "${BENCH_NICE:-}" ]; then
        setsid -w sh -c 'echo "$0" >/proc/self/autogroup 2>/dev/null; exec nice -n "$0" "$@"' \
            "$BENCH_NICE" "$@"
    else
        "$@"
    fi
}
