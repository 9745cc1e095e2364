#!/bin/sh
# Quick start: installs and builds if needed, then runs the main job on this
# machine: the built-in default search (ResNet-20 on Fashion-MNIST: pretrain,
# search, prune, finetune; about 4 minutes on 2 cores), writing its
# checkpoints and the compact model to ./checkpoints. Extra arguments go to
# dnal search (e.g. --set search.lambda=0.02).
set -u
cd "$(dirname "$0")/.." || exit 1
jobs/setup.sh build || exit 1
exec build/dnal search "$@"
