#!/bin/sh
# Training speed of a compact network against its dense network, side by
# side: `dnal bench` on both model files, alternating, REPS pairs; prints
# each run, both medians and the median of the pairs' ratios (this
# machine's timings swing by 30%, so only ratios of neighbouring runs mean
# anything). Before each pair the script waits for a quiet machine
# (jobs/bench/quiet.sh: MAX_OTHERS, QUIET_WAIT), and a pair during which
# other processes took more than MAX_OTHERS of the CPU is run again, up to
# 3*REPS pairs in all; `others=` on each run line says how busy it was.
#
#   jobs/bench/compact-speed.sh CHECKPOINT_DIR [CHANNEL_MULTIPLE [BATCH [REPS]]]
#
# CHECKPOINT_DIR holds a run's pretrain.h5 (exported dense) and search.h5
# (exported compact, pruned with prune.channel_multiple=CHANNEL_MULTIPLE,
# a number or auto, and the run's other prune settings, its FLOPs target
# included). THREADS (default 2) threads.
set -eu
dir=$1
multiple=${2:-8}
batch=${3:-128}
reps=${4:-5}
threads=${THREADS:-2}
here=$(dirname "$0")
dnal=${DNAL:-$here/../../build/dnal}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
. "$here/quiet.sh"
"$dnal" export "$dir/pretrain.h5" -o "$tmp/dense.h5" >/dev/null
"$dnal" export "$dir/search.h5" -o "$tmp/compact.h5" --set prune.channel_multiple="$multiple" |
    sed 's/^export /compact /'
ips() { niced "$dnal" bench "$1" --set data.batch="$batch" --set run.threads="$threads" --steps 10 --warmup 3 |
    sed -n 's/^bench .*images_per_s=\([0-9.]*\) .*/\1/p'; }
: >"$tmp/times"
: >"$tmp/all"
clean=0
attempt=0
while [ "$clean" -lt "$reps" ] && [ "$attempt" -lt $((3 * reps)) ]; do
    attempt=$((attempt + 1))
    wait_quiet
    busy=0
    mark
    d=$(ips "$tmp/dense.h5")
    others
    echo "run pair=$attempt net=dense images_per_s=$d others=$o"
    above "$o" && busy=1
    mark
    c=$(ips "$tmp/compact.h5")
    others
    echo "run pair=$attempt net=compact images_per_s=$c others=$o"
    above "$o" && busy=1
    echo "$d $c" >>"$tmp/all"
    if [ "$busy" -eq 0 ]; then
        clean=$((clean + 1))
        echo "$d $c" >>"$tmp/times"
    fi
done
counted="pairs=$clean of $attempt"
if [ "$clean" -eq 0 ]; then # never quiet: every pair, and say so
    cp "$tmp/all" "$tmp/times"
    counted="pairs=$attempt busy=1"
fi
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
d=$(cut -d' ' -f1 "$tmp/times" | median)
c=$(cut -d' ' -f2 "$tmp/times" | median)
r=$(awk '{ print $2 / $1 }' "$tmp/times" | median)
echo "speed batch=$batch threads=$threads $counted dense_images_per_s=$d compact_images_per_s=$c ratio=$(awk "BEGIN { printf \"%.2f\", $r }")"
