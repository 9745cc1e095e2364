#!/bin/sh
# The Fashion-MNIST results table over seeds: the default recipe (`dnal
# search` without a config: pretrain 1.5 epochs, search 0.5, finetune 1, on
# 2 ranks of one thread through jobs/run-local.sh) for
#   resnet20 at each lambda of LAMBDAS, in dnal's default mode and in the
#            paper's faithful mode (FAITHFUL below), each with every seed of SEEDS;
#   resnet56 at RESNET56_LAMBDA, default mode, every seed;
# then dnal-sweep over all their logs: the per-run table and, grouping the
# runs that differ only in run.seed, mean and standard deviation
# (OUT/table/sweep.md, seeds.md, seeds.csv).
#
#   jobs/bench/fmnist-table.sh [OUT]          (default: runs/fmnist-table)
#
# Each run goes to OUT/<model>-<mode>-l<lambda>-s<seed>/ (run.h5, out.txt,
# checkpoints/). A run whose log is marked finished is not run again, so the
# script continues where it stopped; an unfinished one starts over. LOCK=FILE
# runs each one under `flock FILE` (a machine shared with other timed work).
# About 4 minutes a resnet20 run and 12 a resnet56 run on 2 cores.
set -u
cd "$(dirname "$0")/../.." || exit 1
out=${1:-runs/fmnist-table}
lambdas=${LAMBDAS:-"0.006 0.012 0.02"}
seeds=${SEEDS:-"1 2 3"}
resnet56_lambda=${RESNET56_LAMBDA:-0.012}
# the paper's choices where dnal's defaults differ (README, "The paper's
# recipe and dnal's"): the count regulariser, beta once per epoch, no weight
# decay and a new optimiser (momentum at 0) every epoch in the search, the
# optimiser renewed every epoch in pretraining and finetuning too, FLOPs
# counted the authors' way. Channel multiples are 1 in both modes.
FAITHFUL="--set search.regularizer=count --set search.beta_update=epoch
  --set search.weight_decay=0 --set search.momentum_reset=epoch
  --set pretrain.momentum_reset=epoch --set finetune.momentum_reset=epoch
  --set search.flops_count=authors"

finished() { h5dump -a /finished "$1" >/dev/null 2>&1; }

one() { # NAME ARGS...: one run into OUT/NAME unless it finished there
    dir=$out/$1
    shift
    if finished "$dir/run.h5"; then
        echo "fmnist-table: $dir finished already"
        return 0
    fi
    rm -rf "$dir"
    mkdir -p "$dir" || exit 1
    echo "fmnist-table: $dir"
    start=$(date +%s)
    if [ -n "${LOCK:-}" ]; then
        RUN_DIR=$dir flock "$LOCK" jobs/run-local.sh "$@" >"$dir/out.txt" 2>&1
    else
        RUN_DIR=$dir jobs/run-local.sh "$@" >"$dir/out.txt" 2>&1
    fi
    rc=$?
    echo "fmnist-table: $dir exit $rc after $(($(date +%s) - start)) s"
    grep '^summary' "$dir/out.txt"
}

# seed by seed, so that a table cut short has every cell over fewer seeds
for seed in $seeds; do
    for lambda in $lambdas; do
        one "resnet20-default-l$lambda-s$seed" --set search.lambda="$lambda" --set run.seed="$seed"
        # shellcheck disable=SC2086 # FAITHFUL is a list of arguments
        one "resnet20-faithful-l$lambda-s$seed" --set search.lambda="$lambda" \
            --set run.seed="$seed" $FAITHFUL
    done
    one "resnet56-default-l$resnet56_lambda-s$seed" --set model.name=resnet56 \
        --set search.lambda="$resnet56_lambda" --set run.seed="$seed"
done
python3=${PYTHON:-python3}
"$python3" analysis/dnal-sweep "$out"/*/run.h5 -o "$out/table" && cat "$out/table/seeds.md"
