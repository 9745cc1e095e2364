#!/bin/sh
# dnal search end to end on a Fashion-MNIST subset: beta takes the scheduled
# value at every step, the summary and kept-channels table, checkpoints at
# stage ends, the compact model (export, eval, bench agree with the run),
# run.init, budget targeting, and bad checkpoints (exit 2 naming the file).
# Speaks TAP. $DNAL is the binary under test.
DNAL=${DNAL:-./dnal}
. "$(dirname "$0")/../tap.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
small="--set data.train_limit=1024 --set data.eval_limit=256 --set data.batch=64"

# 16 steps per epoch; search 2 epochs = 32 steps, beta per step, hold 0.1:
# beta = 1e4^(s/28) for s < 28, then 1e4
"$DNAL" search $small --set pretrain.epochs=1 --set search.epochs=2 --set finetune.epochs=1 \
    --set search.lambda=0.05 --set checkpoint.dir=ck --set log.every=1 >run.out 2>run.err
rc=$?
check "dnal search exits 0" "[ $rc -eq 0 ]"
grep '^stage=search' run.out | sed 's/.*epoch=\([0-9]*\) step=\([0-9]*\)\/16 .*beta=\([0-9.e+]*\) .*/\1 \2 \3/' >beta.txt
check "one progress line per search step (32)" "[ \$(wc -l <beta.txt) -eq 32 ]"
awk '{ s = ($1 - 1) * 16 + $2 - 1; want = s < 28 ? exp(log(1e4) * s / 28) : 1e4;
       if ($3 / want > 1.001 || $3 / want < 0.999) { print "step " s ": beta " $3 " want " want; bad = 1 } }
     END { exit bad }' beta.txt >beta.bad
check "beta takes the scheduled value at every step ($(head -1 beta.bad))" "[ ! -s beta.bad ]"
check "summary line with every key" \
    "grep -q '^summary flops_dense=[0-9]* flops_compact=[0-9]* params_dense=[0-9]* params_compact=[0-9]* top1_search=[0-9.]* top1_pruned=[0-9.]* top1_final=[0-9.]*$' run.out"
check "kept-channels table: 18 gated layers and a total" \
    "grep -q '^gated layer  *dense  *kept  *kept%' run.out && [ \$(grep -c '^layer[1-3]\.[0-2]\.gate[12] ' run.out) -eq 18 ] && grep -q '^all ' run.out"
for s in pretrain search prune finetune model; do
    check "ck/$s.h5 written" "[ -s ck/$s.h5 ]"
done
check "no temporary file left" "! ls ck/*.tmp >/dev/null 2>&1"

# staged search: conv and BN frozen, the classifier (first in the flat
# buffer: parameters are in reverse layer order) trains; joint: all train
frozen() { # checkpoint-before checkpoint-after -> "changed_classifier changed_rest"
    /usr/bin/python3 -c "
import h5py, numpy as np, sys
a, b = (h5py.File(p, 'r')['/net/param'][()] for p in sys.argv[1:3])
fc = 64 * 10 + 10 + 6  # fc weight and bias, padded to 16 floats
print(int(np.any(a[:fc] != b[:fc])), int(np.any(a[fc:] != b[fc:])))" "$1" "$2"
}
check "staged search: the classifier trains, conv and BN stay frozen" "[ \"\$(frozen ck/pretrain.h5 ck/search.h5)\" = '1 0' ]"
"$DNAL" search $small --set run.stages=search --set run.init=ck/pretrain.h5 --set search.mode=joint \
    --set search.epochs=1 --set checkpoint.dir=ckj >joint.out 2>&1
check "joint search: every weight trains with alpha" "[ \"\$(frozen ck/pretrain.h5 ckj/search.h5)\" = '1 1' ]"

final=$(sed -n 's/^summary.*top1_final=\([0-9.]*\)$/\1/p' run.out)
pruned=$(sed -n 's/^summary.*top1_pruned=\([0-9.]*\) .*/\1/p' run.out)
compact=$(sed -n 's/^summary.*flops_compact=\([0-9]*\) .*/\1/p' run.out)
"$DNAL" eval ck/model.h5 $small >eval.out 2>&1
check "dnal eval of the run's model gives top1_final ($final)" "grep -q '^eval stage=model epoch=0 top1=$final ' eval.out"
check "dnal eval counts the compact FLOPs from its real layers" "grep -q '^model model=resnet20 flops=$compact ' eval.out"
"$DNAL" export ck/search.h5 -o from_search.h5 >export.out 2>&1
"$DNAL" eval from_search.h5 $small >eval2.out 2>&1
check "export from the search checkpoint prunes as the run did (top1 $pruned, $compact FLOPs)" \
    "grep -q '^eval stage=model epoch=0 top1=$pruned ' eval2.out && grep -q 'flops=$compact ' export.out"
"$DNAL" bench from_search.h5 --set data.batch=16 --steps 2 --warmup 1 >bench.out 2>&1
check "dnal bench MODEL.h5 times the compact network" \
    "grep -q '^bench model=resnet20 batch=16 .* flops=$compact .* file=from_search.h5' bench.out"

# run.init: finetune again from the pruned checkpoint
"$DNAL" search $small --set run.stages=finetune --set run.init=ck/prune.h5 \
    --set checkpoint.dir=ck2 >init.out 2>&1
rc=$?
check "run.init=ck/prune.h5 with run.stages=finetune exits 0" "[ $rc -eq 0 ]"
check "run.init is reported" "grep -q '^init from=ck/prune.h5 stages_done=pretrain,search,prune ' init.out"
check "the finetune starts from the compact network ($compact FLOPs)" \
    "grep -q '^summary flops_dense=[0-9]* flops_compact=$compact ' init.out"

# budget targeting: 4096 samples, pretrain 2 epochs, then 128 search steps
# from that checkpoint with a target above what the search reaches (0.5: the
# fit closes channels) and one below (0.3: it opens them)
mid="--set data.train_limit=4096 --set data.eval_limit=256 --set data.batch=128"
"$DNAL" train $mid --set pretrain.epochs=2 --set checkpoint.dir=ck4k >/dev/null 2>&1
for target in 0.5 0.3; do
    "$DNAL" search $mid --set run.stages=search,prune --set run.init=ck4k/pretrain.h5 \
        --set search.flops_target=$target --set search.epochs=4 --set checkpoint.dir=ck$target \
        --set log.path=budget$target.h5 >budget$target.out 2>&1
    ratio=$(sed -n 's/^prune flops=\([0-9.]*\) .*/\1/p' budget$target.out)
    searched=$(sed -n 's/^search_end .*flops_expected=\([0-9.]*\)$/\1/p' budget$target.out)
    # lambda steers the search towards the target, prune fits the masks to it
    # (without a target this run ends near 0.34)
    check "search.flops_target=$target: compact FLOPs $ratio within 0.01 below it (the search ended at $searched)" \
        "awk 'BEGIN { r = \"$ratio\" + 0; exit !(\"$ratio\" != \"\" && r <= $target && r >= $target - 0.01) }'"
done
"$DNAL" export ck4k/pretrain.h5 -o dense.h5 >export_dense.out 2>&1
check "a checkpoint never searched exports dense" \
    "grep -q '^export model=resnet20 flops_dense=\\([0-9]*\\) flops=\\1 ' export_dense.out"

# bad checkpoints: exit 2 and a message naming the file
head -c 20000 ck/search.h5 >trunc.h5
"$DNAL" export trunc.h5 -o x.h5 >/dev/null 2>err.txt; rc=$?
check "a truncated checkpoint: exit 2 naming it" "[ $rc -eq 2 ] && grep -q 'trunc.h5' err.txt"
"$DNAL" eval ck/search.h5 $small >/dev/null 2>err.txt; rc=$?
check "dnal eval of a checkpoint (not a model): exit 2 naming it" \
    "[ $rc -eq 2 ] && grep -q 'ck/search.h5: a dnal-checkpoint file, not a dnal model' err.txt"
"$DNAL" search $small --set model.name=resnet56 --set run.init=ck/pretrain.h5 >/dev/null 2>err.txt; rc=$?
check "run.init with a checkpoint of another model: exit 2 naming both" \
    "[ $rc -eq 2 ] && grep -q 'ck/pretrain.h5: checkpoint of resnet20.*this run builds resnet56' err.txt"
"$DNAL" export missing.h5 -o x.h5 >/dev/null 2>err.txt; rc=$?
check "a missing checkpoint: exit 2 naming it" "[ $rc -eq 2 ] && grep -q 'missing.h5' err.txt"

echo "1..$n"
[ $fail -eq 0 ]
