#!/bin/sh
# Data parallelism against threads on one node, side by side: `dnal bench`
# with RANKS ranks of one thread against one rank of RANKS threads, same
# model and global batch, alternating, REPS times each; prints the medians of
# images/s and of the exposed communication share, and the ratio (timings
# here swing by 30%: only the ratio of interleaved runs means anything).
#
#   jobs/bench/ranks-vs-threads.sh [MODEL [BATCH [RANKS [REPS [IMAGE_SIZE]]]]]
set -eu
model=${1:-resnet20}
batch=${2:-128}
ranks=${3:-2}
reps=${4:-5}
size=${5:-28}
dnal=${DNAL:-$(dirname "$0")/../../build/dnal}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Open MPI binds a lone rank to one core; MPICH's mpiexec does not bind
bind_none=
"${MPIEXEC:-mpiexec}" --version 2>&1 | grep -q -e 'Open MPI' -e OpenRTE && bind_none="--bind-to none"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
args="--set model.name=$model --set data.batch=$batch --set data.image_size=$size --steps 20 --warmup 3"
# "images_per_s exposed_share" of a bench line
fields() { sed -n 's/^bench .*images_per_s=\([0-9.]*\) step_ms=\([0-9.]*\) .*exposed_comm_ms=\([0-9.]*\) .*/\1 \3 \2/p' |
    awk '{ printf "%s %.4f\n", $1, $2 / $3 }'; }
for i in $(seq "$reps"); do
    echo "ranks $(${MPIEXEC:-mpiexec} -n "$ranks" env OMP_NUM_THREADS=1 "$dnal" bench $args | fields)" >>"$tmp/t"
    echo "threads $(${MPIEXEC:-mpiexec} -n 1 $bind_none env OMP_NUM_THREADS="$ranks" "$dnal" bench $args | fields)" >>"$tmp/t"
done
median() { grep "^$1 " "$tmp/t" | cut -d' ' -f"$2" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
r=$(median ranks 2)
t=$(median threads 2)
echo "scaling model=$model batch=$batch reps=$reps ranks${ranks}x1_images_per_s=$r" \
    "ranks1x${ranks}_images_per_s=$t exposed_share=$(median ranks 3) ratio=$(awk "BEGIN { printf \"%.3f\", $r / $t }")"
