#!/bin/sh
# dnal search of proxyless-supernet end to end on a tiny Fashion-MNIST subset
# (28x28: the small-image variant, width 0.25): a short search with a large
# lambda removes candidates (prune removed_candidates=N of 126, N >= 1, each
# named), the compact network finetunes, and its exported model reloads:
# dnal eval gives the run's final accuracy and the compact FLOPs. Speaks TAP.
# $DNAL is the binary under test.
DNAL=${DNAL:-./dnal}
. "$(dirname "$0")/../tap.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
small="--set data.train_limit=32 --set data.eval_limit=32 --set data.batch=16"

# 2 steps per epoch: pretrain 2 steps, search 4 (beta per step to 1e4), finetune 2
"$DNAL" search $small --set model.name=proxyless-supernet --set model.width=0.25 \
    --set pretrain.epochs=1 --set search.epochs=2 --set finetune.epochs=1 \
    --set search.lambda=0.5 --set checkpoint.dir=ck >run.out 2>run.err
rc=$?
check "dnal search of proxyless-supernet exits 0 ($(tail -1 run.err))" "[ $rc -eq 0 ]"
removed=$(sed -n 's/^prune removed_candidates=\([0-9]*\) of 126$/\1/p' run.out)
check "the search removes at least one candidate (${removed:-none} of 126)" "[ \"\${removed:-0}\" -ge 1 ]"
check "every removed candidate is named" \
    "[ \$(grep -c '^prune removed edges\.[0-9]*\.k[357]e[36]$' run.out) -eq \${removed:-0} ]"
check "the compact network finetunes" "grep -q '^eval stage=finetune epoch=1 ' run.out"
final=$(sed -n 's/^summary.*top1_final=\([0-9.]*\)$/\1/p' run.out)
compact=$(sed -n 's/^summary.*flops_compact=\([0-9]*\) .*/\1/p' run.out)
dense=$(sed -n 's/^summary flops_dense=\([0-9]*\) .*/\1/p' run.out)
check "summary: compact FLOPs $compact below dense $dense" "[ -n \"$compact\" ] && [ $compact -lt $dense ]"
"$DNAL" eval ck/model.h5 $small >eval.out 2>&1
check "dnal eval of the run's model gives top1_final ($final)" "grep -q '^eval stage=model epoch=0 top1=$final ' eval.out"
check "dnal eval counts the compact FLOPs from its real layers" \
    "grep -q '^model model=proxyless-supernet flops=$compact ' eval.out"
pruned=$(sed -n 's/^summary.*top1_pruned=\([0-9.]*\) .*/\1/p' run.out)
"$DNAL" export ck/search.h5 -o from_search.h5 >export.out 2>&1
"$DNAL" eval from_search.h5 $small >eval2.out 2>&1
check "export from the search checkpoint prunes as the run did (top1 $pruned, $compact FLOPs)" \
    "grep -q '^eval stage=model epoch=0 top1=$pruned ' eval2.out && grep -q 'flops=$compact ' export.out"

echo "1..$n"
[ $fail -eq 0 ]
