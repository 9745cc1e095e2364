#!/bin/sh
# run.dtype=bf16 (docs/design.md, "One training step"): a bf16 run stopped by
# SIGUSR1 inside the search and resumed ends bitwise as one that never
# stopped (checkpoints hold the f32 master weights, the optimiser state and
# alpha, as in f32); its checkpoints and model file are f32, so the model
# exports and evaluates like an f32 one. On a CPU where oneDNN has no bf16,
# TAP skips naming the ISA. Speaks TAP. $DNAL is the binary under test.
DNAL=${DNAL:-./dnal}
. "$(dirname "$0")/../tap.sh"
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
if ! "$DNAL" info | grep -Eq '^bf16=(native|emulated)$'; then
    echo "ok 1 # SKIP bf16 resume: oneDNN creates no bf16 primitives on ISA $("$DNAL" info | sed -n 's/^onednn_isa=//p')"
    echo "1..1"
    exit 0
fi
# 16 steps per epoch: pretrain 16, search 16, finetune 16
run="--set run.dtype=bf16 --set data.train_limit=1024 --set data.eval_limit=256
     --set data.batch=64 --set pretrain.epochs=1 --set search.epochs=1 --set finetune.epochs=1
     --set log.every=4 --set log.gate_every=4 --set checkpoint.every=8"
wait_for() { # up to 2 minutes for a line matching $2 in file $1
    i=0
    while ! grep -q "$2" "$1" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.2; i=$((i + 1)); done
}

"$DNAL" search $run --set log.path=a.h5 --set checkpoint.dir=a >a.out 2>&1
check "the uninterrupted bf16 run exits 0 ($(grep '^summary' a.out | cut -d' ' -f2-6))" "[ $? -eq 0 ]"
"$DNAL" search $run --set log.path=b.h5 --set checkpoint.dir=b >b.out 2>&1 &
pid=$!
wait_for b.out '^stage=search'
kill -USR1 $pid
wait $pid
rc=$?
check "SIGUSR1 in the bf16 search: checkpoint and exit 75" "[ $rc -eq 75 ]"
"$DNAL" search --resume b >b2.out 2>&1
rc=$?
check "--resume continues the bf16 run (the stored configuration says bf16)" \
    "[ $rc -eq 0 ] && grep -q '^dtype = bf16$' b2.out"
result=$(/usr/bin/python3 "$here/same_run.py" a b)
check "bf16 stopped and resumed = uninterrupted, bitwise ($result)" "[ \"$result\" = same ]"
check "the same summary line" "[ \"\$(grep '^summary' a.out)\" = \"\$(grep '^summary' b2.out)\" ]"
types=$(/usr/bin/python3 -c "
import h5py, sys
with h5py.File('a/finetune.h5', 'r') as f:
    print(f['/net/param'].dtype, f['/net/stats'].dtype)")
check "bf16 checkpoints hold f32 weights and statistics ($types)" "[ \"$types\" = 'float32 float32' ]"
"$DNAL" eval a/model.h5 --set data.eval_limit=256 >e32.out 2>&1 &&
    "$DNAL" eval a/model.h5 --set data.eval_limit=256 --set run.dtype=bf16 >e16.out 2>&1
rc=$?
t32=$(sed -n 's/^eval .* top1=\([0-9.]*\).*/\1/p' e32.out)
t16=$(sed -n 's/^eval .* top1=\([0-9.]*\).*/\1/p' e16.out)
check "the bf16 run's model file evaluates in f32 and in bf16 alike (top-1 $t32, $t16)" \
    "[ $rc -eq 0 ] && [ -n '$t32' ] && /usr/bin/python3 -c 'import sys; sys.exit(abs($t32 - $t16) > 0.02)'"
echo "1..$n"
[ $fail -eq 0 ]
