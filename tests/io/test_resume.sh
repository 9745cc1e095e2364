#!/bin/sh
# Checkpoints, signals and resume (docs/design.md: "The MPI protocol", "Checkpoints"): a run stopped
# by SIGUSR1 in the search and resumed ends with the parameters, alpha and
# log rows of a run that never stopped; so does one killed with -9 and
# resumed from its newest periodic checkpoint; only the newest
# checkpoint.keep step checkpoints stay; on 2 ranks a signal to one rank
# stops both at the same step with exit 75, and a 1-rank resume of that
# checkpoint says so; a non-finite loss exits 3 naming the step and layer
# with the last checkpoint intact; a bad checkpoint to resume is exit 2.
# Speaks TAP. $DNAL is the binary under test.
DNAL=${DNAL:-./dnal}
. "$(dirname "$0")/../tap.sh"
. "$(dirname "$0")/../mpi.sh"
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
# 16 steps per epoch: pretrain 16, search 16, finetune 16
run="--set data.train_limit=1024 --set data.eval_limit=256 --set data.batch=64
     --set pretrain.epochs=1 --set search.epochs=1 --set finetune.epochs=1
     --set log.every=4 --set log.gate_every=4 --set checkpoint.every=8 --set checkpoint.keep=2"
# waits (up to 2 minutes) for a line matching $2 in file $1
wait_for() {
    i=0
    while ! grep -q "$2" "$1" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.2; i=$((i + 1)); done
}
# "same" if two runs' checkpoints and logs agree bitwise (images/s aside)
same_run() { /usr/bin/python3 "$here/same_run.py" "$1" "$2"; }

"$DNAL" search $run --set log.path=a.h5 --set checkpoint.dir=a >a.out 2>&1
check "the uninterrupted run exits 0" "[ $? -eq 0 ]"
check "checkpoint.keep=2: the two newest step checkpoints stay (step 40, 48)" \
    "[ \"\$(ls a | grep '^step-' | tr '\n' ' ')\" = 'step-00000040.h5 step-00000048.h5 ' ]"

"$DNAL" search $run --set log.path=b.h5 --set checkpoint.dir=b >b.out 2>&1 &
pid=$!
wait_for b.out '^stage=search'
kill -USR1 $pid
wait $pid
rc=$?
check "SIGUSR1 in the search: checkpoint and exit 75 ($(grep '^stopped' b.out))" \
    "[ $rc -eq 75 ] && grep -q '^checkpoint step=[0-9]* path=b/step-[0-9]*.h5 signal=1' b.out"
"$DNAL" search --resume b >b2.out 2>&1
rc=$?
check "--resume b continues inside the search ($(grep '^resume' b2.out | cut -d' ' -f2-5))" \
    "[ $rc -eq 0 ] && grep -q '^resume from=b/step-[0-9]*.h5 stages_done=pretrain ' b2.out"
check "stopped and resumed = uninterrupted: parameters, alpha, BN statistics, log rows ($(same_run a b))" \
    "[ \"\$(same_run a b)\" = same ]"
check "the same summary line" "[ \"\$(grep '^summary' a.out)\" = \"\$(grep '^summary' b2.out)\" ]"

"$DNAL" search $run --set log.path=c.h5 --set checkpoint.dir=c >c.out 2>&1 &
pid=$!
wait_for c.out '^checkpoint step=24 '
kill -9 $pid
wait $pid 2>/dev/null
"$DNAL" search --resume c >c2.out 2>&1
rc=$?
check "kill -9 after step 24: --resume takes the newest checkpoint and finishes" \
    "[ $rc -eq 0 ] && grep -q '^resume from=c/step-000000[0-9][0-9].h5' c2.out"
check "killed and resumed = uninterrupted ($(same_run a c))" "[ \"\$(same_run a c)\" = same ]"

# the authors' optimiser per epoch (momentum to 0 at each epoch's start, in
# every stage) and their search settings: killed after the checkpoint at the
# search's epoch boundary (step 32: its first step of epoch 2 resets), resumed
faithful="--set search.epochs=2 --set search.beta_update=epoch --set search.regularizer=count
     --set search.weight_decay=0 --set search.momentum_reset=epoch
     --set pretrain.momentum_reset=epoch --set finetune.momentum_reset=epoch"
"$DNAL" search $run $faithful --set log.path=f.h5 --set checkpoint.dir=f >f.out 2>&1
"$DNAL" search $run $faithful --set log.path=g.h5 --set checkpoint.dir=g >g.out 2>&1 &
pid=$!
wait_for g.out '^checkpoint step=32 '
kill -9 $pid
wait $pid 2>/dev/null
"$DNAL" search --resume g/step-00000032.h5 >g2.out 2>&1
rc=$?
check "momentum reset per epoch: killed after step 32 and resumed = uninterrupted ($(same_run f g))" \
    "[ $rc -eq 0 ] && [ \"\$(same_run f g)\" = same ]"

# 2 ranks, SIGUSR1 to one rank only
mpi_run 2 env OMP_NUM_THREADS=1 "$DNAL" search $run --set log.path=m.h5 --set checkpoint.dir=m \
    >m.out 2>&1 &
pid=$!
wait_for m.out '^stage=search'
rank=$(pgrep -f '^[^ ]*dnal search.*checkpoint.dir=m' | tail -n 1) # a rank (its first word ends in dnal), not the launcher
kill -USR1 "$rank"
wait $pid
rc=$?
check "2 ranks, SIGUSR1 to one rank: both stop at one step, exit 75" \
    "[ $rc -eq 75 ] && [ \$(grep -c '^stopped step=' m.out) -eq 1 ]"
"$DNAL" search --resume m >m2.out 2>&1
rc=$?
check "a 2-rank checkpoint resumes on 1 rank and says so in its output" \
    "[ $rc -eq 0 ] && grep -q 'world_size=1 checkpoint_world_size=2' m2.out && grep -q '^summary' m2.out"
check "... and in its log (world_size_resumed=1, resumes=1)" \
    "/usr/bin/python3 -c \"import h5py; f = h5py.File('m.h5', 'r'); exit(not (f.attrs['world_size_resumed'] == 1 and f.attrs['resumes'] == 1))\""

# non-finite loss: exit 3 naming step and layer; the checkpoint before it loads
"$DNAL" train $run --set pretrain.lr=1e30 --set checkpoint.every=1 --set checkpoint.dir=nan \
    --set log.path=nan.h5 >nan.out 2>nan.err
rc=$?
check "a diverging run: exit 3 naming the step and the layer ($(head -c 120 nan.err))" \
    "[ $rc -eq 3 ] && grep -q 'non-finite \(loss\|gradient\) at step [0-9]* .*layer [a-z0-9.]*' nan.err"
last=$(ls nan | grep '^step-' | tail -n 1)
"$DNAL" export "nan/$last" -o nan_model.h5 >/dev/null 2>&1
check "the last checkpoint before it is intact ($last loads)" "[ -n \"$last\" ] && [ -s nan_model.h5 ]"

head -c 10000 a/step-00000048.h5 >a/trunc.h5
"$DNAL" search --resume a/trunc.h5 >/dev/null 2>err.txt
rc=$?
check "--resume of a truncated checkpoint: exit 2 naming it" "[ $rc -eq 2 ] && grep -q 'a/trunc.h5' err.txt"
"$DNAL" search --resume nowhere >/dev/null 2>err.txt
rc=$?
check "--resume of a missing folder: exit 2 naming it" "[ $rc -eq 2 ] && grep -q 'nowhere' err.txt"

echo "1..$n"
[ $fail -eq 0 ]
