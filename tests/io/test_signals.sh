#!/bin/sh
# Stop signals (docs/design.md, "Signals"): handlers are in place before
# anything slow starts, so SIGUSR1 while the data loads or SIGTERM while a
# run resumes exits 75 with nothing lost (no checkpoint written, the one
# resumed from intact); a stop during an evaluation cuts it short, and the
# resumed run evaluates that epoch again, as the uninterrupted run did; a
# second SIGTERM ends a process at once, and one blocked in I/O ends by the
# watchdog within seconds. To catch a process at a given point, it is
# stopped (SIGSTOP) there, signalled and continued. Speaks TAP.
DNAL=${DNAL:-./dnal}
PROBE=${PROBE:-./tests/unit/fatal_probe}
. "$(dirname "$0")/../tap.sh"
tmp=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
wait_for() { # FILE PATTERN: up to 2 minutes
    i=0
    while ! grep -q "$2" "$1" 2>/dev/null && [ $i -lt 2400 ]; do sleep 0.05; i=$((i + 1)); done
}
# signal PID SIG: delivered while the process is held still
signal() { kill -STOP "$1"; kill -"$2" "$1"; kill -CONT "$1"; }
tiny="--set data.train_limit=256 --set data.batch=128 --set pretrain.epochs=1 --set model.name=convnet"

# the full Fashion-MNIST loads for a while after the configuration is printed
"$DNAL" train $tiny --set log.path=a.h5 --set checkpoint.dir=a >a.out 2>a.err &
pid=$!
wait_for a.out '^# end of configuration'
signal $pid USR1
wait $pid
rc=$?
check "SIGUSR1 while the data loads: exit 75, not death by the signal (rc $rc; $(grep '^stopped' a.out))" \
    "[ $rc -eq 75 ] && grep -q '^stopped signal=10 before the first step' a.out"
check "... nothing to lose: no checkpoint written, no step run" \
    "! ls a/*.h5 >/dev/null 2>&1 && ! grep -q '^stage=' a.out"

"$DNAL" train $tiny --set log.path=b.h5 --set checkpoint.dir=b --set checkpoint.every=1 \
    --set data.eval_limit=64 >b.out 2>&1
sum_before=$(md5sum b/*.h5)
"$DNAL" train --resume b/step-00000001.h5 >b2.out 2>b2.err &
pid=$!
wait_for b2.out '^# end of configuration'
signal $pid TERM
wait $pid
rc=$?
check "SIGTERM while resuming: exit 75 (rc $rc; $(grep '^stopped' b2.out))" \
    "[ $rc -eq 75 ] && grep -q '^stopped signal=15 before the first step' b2.out"
check "... the checkpoints are as they were" "[ \"\$(md5sum b/*.h5)\" = \"$sum_before\" ]"
"$DNAL" train --resume b/step-00000001.h5 >b3.out 2>&1
check "... and the same --resume then finishes (exit 0)" "[ $? -eq 0 ] && grep -q '^summary' b3.out"

# a stop inside the evaluation of the 10000 test images
"$DNAL" train $tiny --set log.path=c.h5 --set checkpoint.dir=c >c.out 2>&1
"$DNAL" train $tiny --set log.path=d.h5 --set checkpoint.dir=d >d.out 2>&1 &
pid=$!
wait_for d.out '^stage=pretrain epoch=1 step=2/2'
signal $pid USR1
wait $pid
rc=$?
check "SIGUSR1 during the evaluation: cut short, checkpoint, exit 75 (rc $rc)" \
    "[ $rc -eq 75 ] && grep -q '^checkpoint step=2 path=d/step-00000002.h5 signal=1' d.out \
     && ! grep -q '^eval stage' d.out"
"$DNAL" train --resume d >d2.out 2>&1
rc=$?
check "... the resumed run evaluates that epoch as the uninterrupted one did ($(grep '^eval stage' d2.out))" \
    "[ $rc -eq 0 ] && [ \"\$(grep '^eval stage' d2.out)\" = \"\$(grep '^eval stage' c.out)\" ] && grep -q '^eval stage' c.out"

"$PROBE" blocked >e.out 2>e.err &
pid=$!
wait_for e.out '^blocked'
kill -TERM $pid
sleep 1
kill -TERM $pid
wait $pid
rc=$?
check "a second SIGTERM ends the process at once, exit 75 ($(cat e.err))" \
    "[ $rc -eq 75 ] && grep -q 'second stop signal' e.err"

"$PROBE" blocked >f.out 2>f.err &
pid=$!
wait_for f.out '^blocked'
start=$(date +%s)
kill -TERM $pid
wait $pid
rc=$?
took=$(($(date +%s) - start))
check "a process blocked in I/O ends ${took}s after one SIGTERM (watchdog), exit 75" \
    "[ $rc -eq 75 ] && [ $took -le 25 ] && grep -q 'not stopped within the grace period' f.err"

echo "1..$n"
[ "$fail" -eq 0 ]
