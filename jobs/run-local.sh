#!/bin/sh
# Quick start: installs and builds if needed, then runs the main job on this
# machine: the built-in default search (ResNet-20 on Fashion-MNIST: pretrain,
# search, prune, finetune) on 2 MPI ranks of one thread each, writing its
# run log, checkpoints and compact model under RUN_DIR (default runs/local,
# ignored by git). Extra arguments go to dnal search (e.g. --set
# search.lambda=0.02). RANKS=N changes the rank count (the global batch,
# data.batch = 128, must split evenly).
set -u
cd "$(dirname "$0")/.." || exit 1
jobs/setup.sh build || exit 1
# Open MPI refuses root unless told; harmless for other users
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
run_dir=${RUN_DIR:-runs/local}
mkdir -p "$run_dir" || exit 1
exec mpirun -np "${RANKS:-2}" -x OMP_NUM_THREADS=1 build/dnal search \
    --set checkpoint.dir="$run_dir/checkpoints" --set log.path="$run_dir/run.h5" "$@"
