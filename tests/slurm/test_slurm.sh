#!/bin/sh
# jobs/search.sbatch on a real one-node SLURM (slurmctld, slurmd and munge
# started here on localhost, everything under a temporary folder): the job
# runs 2 ranks through srun, `scancel --signal=USR1` preempts it inside the
# search, it checkpoints and exits 75, the script requeues it, the rerun
# resumes from the run's checkpoints and ends with the result of the same
# search run straight through (2 ranks, mpiexec). Also jobs/sweep.sbatch as a
# 2-task array submitted from another folder, whose task with the array's job id is preempted:
# it alone is requeued and resumes, the other runs once; the threads per rank
# (CPUs per task minus ImageNet's data.workers, refused when none is left) and
# a resume by hand on a larger allocation. Needs root (the daemons run as root
# here), Debian's slurm-wlm and munge (jobs/setup.sh installs them) and a dnal
# built with Open MPI (its srun support is PMIx). Speaks TAP.
DNAL=${DNAL:-./dnal}
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$(dirname "$0")/../tap.sh"
. "$(dirname "$0")/../mpi.sh"
[ $mpi_flavour = openmpi ] || { echo "1..0 # SKIP the test cluster's srun launches Open MPI (PMIx) ranks; this is $MPIEXEC"; exit 0; }
for tool in slurmctld slurmd munged sbatch; do
    command -v $tool >/dev/null 2>&1 || PATH=$PATH:/usr/sbin
    command -v $tool >/dev/null 2>&1 || { echo "1..0 # SKIP $tool is not installed"; exit 0; }
done
[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP the test cluster runs its daemons as root"; exit 0; }

# another run of this test on the machine (another checkout's suite) holds
# the ports until it ends: wait for them rather than fail
ports_busy() { grep -qiE '^ *[0-9]+: [0-9A-F]+:41B[12] [0-9A-F]+:0000 0A' /proc/net/tcp /proc/net/tcp6 2>/dev/null; }
w=0
while ports_busy && [ $w -lt 600 ]; do sleep 1; w=$((w + 1)); done
[ $w -gt 0 ] && echo "# waited ${w} s for ports 16817/16818"
T=$(mktemp -d /tmp/dnal-slurm.XXXXXX)
chmod 755 "$T"
stop_daemons() {
    for p in slurmd slurmctld munged; do
        [ -s "$T/$p.pid" ] && kill "$(cat "$T/$p.pid")" 2>/dev/null
    done
    sleep 1
    rm -rf "$T"
}
trap stop_daemons EXIT

# munge with its own key and socket
dd if=/dev/urandom of="$T/munge.key" bs=1024 count=1 2>/dev/null
chmod 400 "$T/munge.key"
munged --force --key-file="$T/munge.key" --socket="$T/munge.sock" --pid-file="$T/munged.pid" \
    --log-file="$T/munged.log" --seed-file="$T/munge.seed" 2>"$T/munged.err"

cpus=$(nproc)
mkdir -p "$T/state" "$T/spool"
cat >"$T/slurm.conf" <<EOF
ClusterName=dnaltest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$T/munge.sock,cred_expire=5
CredType=cred/munge
SlurmctldPort=16817
SlurmdPort=16818
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
ReturnToService=2
MailProg=/bin/true
SchedulerParameters=bf_interval=1,sched_interval=1
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=1000 State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$T/slurm.conf"
slurmctld -f "$SLURM_CONF" -c
slurmd -f "$SLURM_CONF" -N localhost
i=0
while [ "$(sinfo -h -o %T 2>/dev/null)" != idle ] && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
wait_job() { # JOBID: until it (every task of an array) has left the queue
    w=0
    while [ -n "$(squeue -h -j "$1" 2>/dev/null)" ] && [ $w -lt 900 ]; do sleep 0.2; w=$((w + 1)); done
}
check "a one-node SLURM on localhost is up ($(sinfo -h -o '%P %T %c' 2>&1 | head -n 1))" \
    "[ \"\$(sinfo -h -o %T)\" = idle ]"

# the search: 16 steps per stage, 2 ranks x 1 thread
cd "$T" || exit 1
mkdir -p build jobs
ln -s "$DNAL" build/dnal
cp "$TOP/jobs/search.sbatch" "$TOP/jobs/sweep.sbatch" jobs/
cat >short.ini <<EOF
[data]
train_limit = 2048
eval_limit = 256
batch = 128
[pretrain]
epochs = 1
[search]
epochs = 1
[finetune]
epochs = 1
[log]
every = 2
[checkpoint]
every = 4
EOF
job=$(sbatch --parsable --ntasks-per-node=2 --cpus-per-task=1 jobs/search.sbatch short.ini)
out="dnal-search-$job.out"
i=0
while ! grep -q '^stage=search' "$out" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.2; i=$((i + 1)); done
scancel --signal=USR1 "$job"
i=0
while [ -n "$(squeue -h -j "$job" 2>/dev/null)" ] && [ $i -lt 900 ]; do sleep 0.2; i=$((i + 1)); done
check "scancel --signal=USR1 in the search: checkpoint, exit 75 ($(grep -m1 '^stopped' "$out"))" \
    "grep -q '^stopped step=[0-9]* signal' '$out' && grep -q 'requeueing job $job' '$out'"
check "the job was requeued and its rerun resumed from the run's checkpoints" \
    "grep -q 'restart 1 ' '$out' && grep -q '^resume from=$T/runs/$job/checkpoints/step-[0-9]*.h5 stages_done=pretrain ' '$out'"
check "the resumed job finished (summary line)" "grep -q '^summary ' '$out'"

# the same search straight through on 2 ranks
mpi_run 2 env OMP_NUM_THREADS=1 "$DNAL" search -c short.ini --set run.threads=1 \
    --set checkpoint.dir=straight --set log.path=straight.h5 >straight.out 2>&1
check "preempted + requeued + resumed = straight through: the same summary" \
    "[ -n \"\$(grep '^summary' straight.out)\" ] && [ \"\$(grep '^summary' straight.out)\" = \"\$(grep '^summary' '$out')\" ]"
check "... and bitwise the same final parameters" \
    "/usr/bin/python3 -c \"import h5py, numpy as np, sys; a, b = (h5py.File(p, 'r')['/net/param'][()] for p in sys.argv[1:]); sys.exit(not np.array_equal(a, b))\" straight/finetune.h5 runs/$job/checkpoints/finetune.h5"

# a resume by hand on a larger allocation (the finished run: it resumes
# and ends at once) takes that allocation's threads, not the checkpoint's
hand=$(RUN_DIR="$T/runs/$job" sbatch --parsable --ntasks-per-node=1 --cpus-per-task=2 jobs/search.sbatch short.ini)
wait_job "$hand"
check "a resume by hand with --cpus-per-task=2 runs 2 threads (the run began with 1)" \
    "grep -q 'restart 0 ranks .* cpus 2 threads 2 workers 0 run_dir $T/runs/$job\$' dnal-search-$hand.out && grep -q '^threads = 2\$' dnal-search-$hand.out && grep -q '^resume from=$T/runs/$job/checkpoints/' dnal-search-$hand.out"

# threads = CPUs per task minus the decoding threads of an ImageNet dataset
mkdir -p imagenet/train/a imagenet/val/a
few=$(sbatch --parsable --ntasks-per-node=1 --cpus-per-task=2 jobs/search.sbatch short.ini \
    --set data.dataset=imagenet --set data.path=imagenet --set data.workers=2)
some=$(sbatch --parsable --ntasks-per-node=1 --cpus-per-task=2 jobs/search.sbatch short.ini \
    --set data.dataset=imagenet --set data.path=imagenet --set data.workers=1)
wait_job "$few"
wait_job "$some"
check "2 CPUs per task and data.workers=2: refused, naming both" \
    "grep -q '2 CPUs per task leave no thread for the step beside data.workers=2 decoding threads' dnal-search-$few.out && ! grep -q '^# dnal search' dnal-search-$few.out"
check "2 CPUs per task and data.workers=1: 1 thread for the step" \
    "grep -q 'cpus 2 threads 1 workers 1 ' dnal-search-$some.out && grep -q '^threads = 1\$' dnal-search-$some.out"

# a 2-task sweep array over lambda, submitted from another folder with the
# scripts elsewhere. One task's SLURM_JOB_ID is the array's own id (SLURM
# gives it to the task that starts last): `scontrol requeue $SLURM_JOB_ID`
# from that task would requeue the whole array. That task is preempted in
# its search: only it must be requeued and resume, the other run once.
mkdir -p scripts elsewhere
cp "$TOP/jobs/search.sbatch" "$TOP/jobs/sweep.sbatch" scripts/
printf '# lambda sweep\nsearch.lambda=0.005\n\nsearch.lambda=0.05\n' >elsewhere/values.txt
cd elsewhere || exit 1
array=$(DNAL="$DNAL" sbatch --parsable --array=0-1 --ntasks-per-node=1 --cpus-per-task=1 \
    "$T/scripts/sweep.sbatch" values.txt "$T/short.ini" \
    --set search.epochs=1 --set finetune.epochs=0.5 --set pretrain.epochs=0.5)
i=0 # both tasks running
while [ "$(squeue -h -j "$array" -t R 2>/dev/null | wc -l)" -lt 2 ] && [ $i -lt 600 ]; do sleep 0.2; i=$((i + 1)); done
victim=$(squeue -h -j "$array" -o '%A %K' | awk -v a="$array" '$1 == a { print $2 }')
[ -n "$victim" ] || victim=0
other=$((1 - victim))
ov=dnal-sweep-${array}_$victim.out
oo=dnal-sweep-${array}_$other.out
i=0
while ! grep -q '^stage=search' "$ov" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.2; i=$((i + 1)); done
scancel --signal=USR1 "${array}_$victim"
wait_job "$array"
f0=$(sed -n 's/^prune flops=\([0-9.]*\) .*/\1/p' "dnal-sweep-${array}_0.out")
f1=$(sed -n 's/^prune flops=\([0-9.]*\) .*/\1/p' "dnal-sweep-${array}_1.out")
check "sweep.sbatch from another folder: 2 array tasks, one lambda each, fewer FLOPs at the larger lambda ($f0 > $f1)" \
    "grep -q 'task 0: search.lambda=0.005' dnal-sweep-${array}_0.out && grep -q 'task 1: search.lambda=0.05' dnal-sweep-${array}_1.out && awk 'BEGIN { exit !(\"$f0\" + 0 > \"$f1\" + 0 && \"$f1\" + 0 > 0) }'"
check "... the runs under the submit folder's runs/sweep-$array/" \
    "[ -s runs/sweep-$array/0/checkpoints/finetune.h5 ] && [ -s runs/sweep-$array/1/run.h5 ] && [ -s runs/sweep-$array/1/checkpoints/model.h5 ]"
check "the preempted task $victim (job id $array, the array's) requeued itself (${array}_$victim), not the array" \
    "grep -q '^stopped step=[0-9]* signal' $ov && grep -q 'requeueing job ${array}_$victim\$' $ov"
check "... and resumed from its checkpoints and finished" \
    "grep -q 'job ${array}_$victim restart 1 ' $ov && grep -q '^resume from=$T/elsewhere/runs/sweep-$array/$victim/checkpoints/step-' $ov && grep -q '^summary ' $ov"
check "task $other ran once, straight through ($(grep -c '^search.sbatch: job' $oo) start(s))" \
    "[ \$(grep -c '^search.sbatch: job' $oo) -eq 1 ] && grep -q 'job ${array}_$other restart 0 ' $oo && [ \$(grep -c '^summary ' $oo) -eq 1 ] && ! grep -q '^resume' $oo"

echo "1..$n"
[ $fail -eq 0 ]
