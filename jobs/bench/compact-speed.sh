#!/bin/sh
# Training speed of a compact network against its dense network, side by
# side: `dnal bench` on both model files, alternating, REPS times each;
# prints both medians and their ratio (this machine's timings swing by 30%,
# so only the ratio of interleaved runs means anything).
#
#   jobs/bench/compact-speed.sh CHECKPOINT_DIR [CHANNEL_MULTIPLE [BATCH [REPS]]]
#
# CHECKPOINT_DIR holds a run's pretrain.h5 (exported dense) and search.h5
# (exported compact, pruned with prune.channel_multiple=CHANNEL_MULTIPLE).
set -eu
dir=$1
multiple=${2:-8}
batch=${3:-128}
reps=${4:-5}
dnal=${DNAL:-$(dirname "$0")/../../build/dnal}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$dnal" export "$dir/pretrain.h5" -o "$tmp/dense.h5" >/dev/null
"$dnal" export "$dir/search.h5" -o "$tmp/compact.h5" --set prune.channel_multiple="$multiple" |
    sed 's/^export /compact /'
ips() { "$dnal" bench "$1" --set data.batch="$batch" --steps 10 --warmup 3 |
    sed -n 's/^bench .*images_per_s=\([0-9.]*\) .*/\1/p'; }
for i in $(seq "$reps"); do
    echo "dense $(ips "$tmp/dense.h5")" >>"$tmp/times"
    echo "compact $(ips "$tmp/compact.h5")" >>"$tmp/times"
done
median() { grep "^$1 " "$tmp/times" | cut -d' ' -f2 | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
d=$(median dense)
c=$(median compact)
echo "speed batch=$batch reps=$reps dense_images_per_s=$d compact_images_per_s=$c ratio=$(awk "BEGIN { printf \"%.2f\", $c / $d }")"
