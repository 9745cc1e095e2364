#!/bin/sh
# ImageNet through dnal on a small tree of real JPEG files (written by
# test_imagenet --make-tree: 4 classes, varied sizes, greyscale and CMYK,
# one truncated file, one PNG named .JPEG): dnal prep packs it into shards
# and names the bad files; resnet18 trains for a few steps on 2 ranks from
# the folders and from the shards, the bad files skipped, named and counted;
# decoding ahead (data.workers=2) trains exactly as decoding in the step
# (data.workers=0), also across the stages of a search; dnal bench reports
# the decoding rate. Speaks TAP.
DNAL=${DNAL:-./dnal}
MAKE_TREE=${IMAGENET_TEST:-./tests/unit/test_imagenet}
. "$(dirname "$0")/../tap.sh"
. "$(dirname "$0")/../mpi.sh"
two() { mpi_run 2 env OMP_NUM_THREADS=1 "$DNAL" "$@"; }
MAKE_TREE=$(cd "$(dirname "$MAKE_TREE")" && pwd)/$(basename "$MAKE_TREE")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
"$MAKE_TREE" --make-tree tree || { echo "1..0 # SKIP cannot write the JPEG tree"; exit 1; }

"$DNAL" prep imagenet tree shards --size 40 --per-shard 8 >prep.out 2>prep.err; rc=$?
check "dnal prep: exit 0, 23 train images in 4 shards, 2 skipped ($(grep 'split=train' prep.out))" \
    "[ $rc -eq 0 ] && grep -q 'prep split=train images=23 skipped=2 shards=4' prep.out \
     && grep -q 'prep split=val images=8 skipped=0' prep.out && [ -s shards/train-00003.dnshard ]"
check "dnal prep names the truncated file and the PNG (stderr and .skipped files)" \
    "grep -q 'n00000001/img_2.JPEG: damaged image data (Premature end' prep.err \
     && grep -q 'not_a_jpeg.JPEG: Not a JPEG file' prep.err \
     && cat shards/*.skipped | grep -q img_2.JPEG && cat shards/*.skipped | grep -q not_a_jpeg"

run="train --set model.name=resnet18 --set data.image_size=32 --set data.batch=8
     --set pretrain.epochs=2 --set pretrain.lr=0.01 --set log.path=run.h5"
two $run --set data.dataset=imagenet --set data.path=tree --set data.workers=2 \
    --set checkpoint.dir=ck1 >folders.out 2>folders.err; rc=$?
check "resnet18 on 2 ranks from the folders: exit 0, $(grep -c '^eval' folders.out) eval lines" \
    "[ $rc -eq 0 ] && [ \$(grep -c '^eval stage=pretrain' folders.out) -eq 2 ]"
check "... the bad files named on stderr and counted once ($(grep '^data skipped' folders.out | head -n 1))" \
    "grep -q 'img_2.JPEG: damaged image data' folders.err && grep -q 'not_a_jpeg.JPEG' folders.err \
     && grep -q '^data skipped train=2 test=0' folders.out"
two $run --set data.dataset=imagenet --set data.path=tree --set data.workers=0 \
    --set checkpoint.dir=ck0 >inline.out 2>&1
check "decoding ahead (workers=2) trains exactly as decoding in the step (workers=0)" \
    "[ \"\$(grep '^eval' folders.out)\" = \"\$(grep '^eval' inline.out)\" ] && grep -q '^eval' inline.out"
two $run --set data.dataset=imagenet-shards --set data.path=shards --set data.workers=2 \
    --set checkpoint.dir=ck2 >shards.out 2>shards.err; rc=$?
check "resnet18 on 2 ranks from the shards: exit 0, $(grep -c '^eval' shards.out) eval lines, nothing skipped" \
    "[ $rc -eq 0 ] && [ \$(grep -c '^eval stage=pretrain' shards.out) -eq 2 ] \
     && ! grep -q '^data skipped' shards.out"

# every stage through the loader: each starts it at its own first step
two search --set model.name=resnet18 --set data.image_size=32 --set data.batch=8 \
    --set data.dataset=imagenet-shards --set data.path=shards --set data.workers=2 \
    --set pretrain.epochs=1 --set search.epochs=1 --set finetune.epochs=1 \
    --set search.beta_update=step --set log.path=search.h5 --set checkpoint.dir=ck3 \
    >search.out 2>&1; rc=$?
check "a search from the shards with data.workers=2: every stage runs, exit 0" \
    "[ $rc -eq 0 ] && grep -q '^eval stage=search' search.out && grep -q '^summary ' search.out"

"$DNAL" bench --set model.name=resnet18 --set data.dataset=imagenet-shards --set data.path=shards \
    --set data.image_size=32 --set data.batch=8 --set data.workers=2 --steps 2 --warmup 1 >bench.out 2>&1
check "dnal bench with imagenet-shards reports decoding beside training ($(grep -o 'per_worker=[0-9.]*' bench.out))" \
    "grep -q '^bench_data dataset=imagenet-shards workers=2 ranks=1 image_size=32 images_per_s=' bench.out \
     && grep -q 'train_images_per_s=' bench.out"

"$DNAL" train --set data.dataset=imagenet --set data.path=missing >miss.out 2>miss.err; rc=$?
check "a missing ImageNet folder: exit 2 naming it" "[ $rc -eq 2 ] && grep -q 'missing/train' miss.err"
echo "1..$n"
[ $fail -eq 0 ]
