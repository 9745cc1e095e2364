#!/bin/sh
# Quick start: installs and builds if needed, then runs the main job on this
# machine: the built-in default search (ResNet-20 on Fashion-MNIST: pretrain,
# search, prune, finetune) on 2 MPI ranks of one thread each, writing its
# run log, checkpoints and compact model under RUN_DIR (default runs/local,
# ignored by git). Extra arguments go to dnal search (e.g. --set
# search.lambda=0.02). RANKS=N changes the rank count (the global batch,
# data.batch = 128, must split evenly). Any MPI: `mpiexec -n N` (MPIEXEC=...
# picks another launcher), or srun inside a SLURM allocation; the threads go
# to the ranks through env, which every launcher passes on.
set -u
cd "$(dirname "$0")/.." || exit 1
jobs/setup.sh build || exit 1
# Open MPI refuses root unless told; harmless for other users and MPIs
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
run_dir=${RUN_DIR:-runs/local}
mkdir -p "$run_dir" || exit 1
ranks=${RANKS:-2}
if [ -n "${SLURM_JOB_ID:-}" ]; then
    launch="srun -n $ranks"
else
    launch="${MPIEXEC:-mpiexec} -n $ranks"
fi
exec $launch env OMP_NUM_THREADS=1 build/dnal search \
    --set checkpoint.dir="$run_dir/checkpoints" --set log.path="$run_dir/run.h5" "$@"
