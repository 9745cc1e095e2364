#!/bin/sh
# How well a latency table predicts: for each model, `dnal profile` on 32x32
# synthetic images at BATCH and THREADS, then short searches to several
# FLOPs budgets with prune.channel_multiple auto and 1, each of which ends
# with the compact step predicted by the table and measured against the
# dense step in the same process (its prune_latency line: 5 alternated
# pairs). Prints one line per search, with the error of the predicted ratio
# to dense against the measured one (machine drift between the profile and
# the search cancels in it) and of the predicted compact time against the
# measured one, and per model the largest of each. It waits for a quiet
# machine before the profile and each search (jobs/bench/quiet.sh) and
# gives `others=` for each: a busy machine makes any of these meaningless.
#
#   jobs/bench/latency-check.sh [MODELS [BATCH [THREADS [TARGETS]]]]
#   e.g. flock /work/bench.lock jobs/bench/latency-check.sh "resnet20 resnet56 mobilenetv2" 128 2
set -eu
models=${1:-resnet20 resnet56 mobilenetv2}
batch=${2:-128}
threads=${3:-2}
targets=${4:-0.3 0.5 0.7}
here=$(dirname "$0")
dnal=${DNAL:-$here/../../build/dnal}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
. "$here/quiet.sh"
data="--set data.dataset=synthetic --set data.batch=$batch --set run.threads=$threads"
for model in $models; do
    wait_quiet
    mark
    niced "$dnal" profile $data --set model.name="$model" -o "$tmp/$model.h5" >"$tmp/profile.out"
    others
    echo "$(grep '^profile ' "$tmp/profile.out") others=$o"
    : >"$tmp/$model.err"
    for target in $targets; do
        for multiple in auto 1; do
            wait_quiet
            mark
            line=$(niced "$dnal" search $data --set model.name="$model" --set run.stages=search,prune \
                --set search.epochs=2 --set search.flops_target="$target" \
                --set prune.channel_multiple="$multiple" --set search.latency_table="$tmp/$model.h5" \
                --set checkpoint.dir="$tmp/ck" --set log.path="$tmp/run.h5" |
                awk '/^prune_latency / { l = $0 } /^prune flops=/ { f = $0 } END { print f, l }')
            others
            rm -rf "$tmp/ck" "$tmp/run.h5"
            echo "$line" | awk -v m="$model" -v t="$target" -v e="$tmp/$model.err" -v o="$o" '{
                for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
                er = v["predicted_ratio"] / v["ratio"] - 1; ea = v["predicted_compact_ms"] / v["compact_ms"] - 1
                printf "latency_check model=%s target=%s flops=%s channel_multiple=%s layout=%s ratio=%.4f predicted_ratio=%.4f ratio_error=%+.3f compact_ms=%.2f predicted_compact_ms=%.2f time_error=%+.3f others=%s\n",
                    m, t, v["flops"], v["channel_multiple"], v["compact_layout"], v["ratio"], v["predicted_ratio"], er, v["compact_ms"], v["predicted_compact_ms"], ea, o
                printf "%f %f\n", (er < 0 ? -er : er), (ea < 0 ? -ea : ea) >> e }'
        done
    done
    awk -v m="$model" '{ if ($1 > r) r = $1; if ($2 > a) a = $2 } END {
        printf "latency_check model=%s largest_ratio_error=%.3f largest_time_error=%.3f\n", m, r, a }' "$tmp/$model.err"
done
