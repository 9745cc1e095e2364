#!/bin/sh
# Decoding rate of the ImageNet pipeline per worker thread at 224x224, from
# JPEG folders and from dnal prep's shards, beside resnet18's training
# step (dnal bench's bench_data line; REPS interleaved runs, medians).
#
#   jobs/bench/decode-speed.sh [IMAGENET_DIR] [REPS]
#
# Without IMAGENET_DIR it writes 400 photo-sized JPEGs (500x375, quality 90,
# about 95 KB each, like ImageNet's) with the test suite's generator
# (make check builds it). Run from the top folder after jobs/setup.sh build.
top=$(cd "$(dirname "$0")/../.." && pwd)
dnal=${DNAL:-$top/build/dnal}
src=$1
reps=${2:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "$src" ]; then
    make -C "$top/build" tests/unit/test_imagenet >/dev/null || exit 1
    "$top/build/tests/unit/test_imagenet" --make-bench-tree "$work/tree" 400 || exit 1
    src=$work/tree
fi
"$dnal" prep imagenet "$src" "$work/shards" --size 256 --per-shard 1000 >/dev/null || exit 1
bench() { # dataset path workers
    OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$dnal" bench --set model.name=resnet18 \
        --set data.dataset="$1" --set data.path="$2" --set data.workers="$3" \
        --set data.batch=32 --steps 3 --warmup 1 2>/dev/null | grep '^bench_data'
}
for r in $(seq "$reps"); do
    for w in 1 2; do
        bench imagenet "$src" $w
        bench imagenet-shards "$work/shards" $w
    done
done >"$work/lines"
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "dataset workers images_per_s per_worker train_images_per_s (medians of $reps)"
for ds in imagenet imagenet-shards; do
    for w in 1 2; do
        sel=$(grep "dataset=$ds workers=$w " "$work/lines")
        f() { echo "$sel" | grep -o "$1=[0-9.]*" | cut -d= -f2 | median; }
        echo "$ds $w $(f ' images_per_s') $(f per_worker) $(f train_images_per_s)"
    done
done
