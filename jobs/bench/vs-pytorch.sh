#!/bin/sh
# Training speed of dnal against the same network in PyTorch, side by side:
# `dnal bench` of a zoo model and jobs/bench/torch_models.py's copy of it
# (no gates), alternating, PAIRS times each. A step on both sides is
# forward, cross-entropy, backward and the SGD update with momentum and
# weight decay (dnal's pretrain.momentum and pretrain.weight_decay), over
# the same warmup and timed steps, on THREADS threads. PyTorch variants:
# NCHW fp32, channels_last fp32, and channels_last under bf16 autocast
# where the CPU has bf16 (lscpu flag avx512_bf16 or amx_bf16). Where dnal
# runs bf16 natively (dnal info: bf16=native), each pair also times dnal with
# run.dtype=bf16, set beside PyTorch's bf16 autocast and dnal's fp32.
#
#   jobs/bench/vs-pytorch.sh MODEL [PAIRS]
#
# Batch 128 for 32x32 models and 32 for 224x224 ones (the input size is the
# zoo's, as dnal bench takes it); BATCH, STEPS (10), WARMUP (3), THREADS (2)
# override, DNAL the binary, PYTHON the interpreter with torch (Debian's
# python3-torch).
#
# Other work on the machine ruins a timing (two threads on two busy cores
# run many times slower, not 30%): each run line gives `others`, the share
# of the machine's CPU time that other processes took during the run. Before
# each pair the script waits (at most QUIET_WAIT seconds, default 900) until
# others stay under MAX_OTHERS (default 0.1) for 5 s, and a pair with a run
# above it is not counted and is run again, up to 3*PAIRS pairs in all.
#
# Prints one line per measurement and the summary line over the counted
# pairs: medians of images/s, the dnal/PyTorch ratios as medians of the
# per-pair ratios, dnal's median step_ms, conv_ms and primitives_ms and
# step_ms/conv_ms. Exits 1 if the two models' parameter or FLOPs counts
# differ.
set -eu
model=$1
pairs=${2:-5}
here=$(dirname "$0")
dnal=${DNAL:-$here/../../build/dnal}
python=${PYTHON:-/usr/bin/python3}
steps=${STEPS:-10}
warmup=${WARMUP:-3}
threads=${THREADS:-2}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
. "$here/quiet.sh" # mark, others, above, wait_quiet (MAX_OTHERS, QUIET_WAIT)

if ! "$python" -c 'import torch' 2>/dev/null; then
    echo "vs-pytorch.sh: $python cannot import torch (apt-get install python3-torch)" >&2
    exit 1
fi
# the PyTorch model's counts and input size: "params flops image_size"
"$python" "$here/torch_models.py" "$model" --params >"$tmp/torch_counts"
counts=$(sed -n 's/^params .* params=\([0-9]*\) flops=\([0-9]*\) image_size=\([0-9]*\)$/\1 \2 \3/p' "$tmp/torch_counts")
size=${counts##* }
if [ "$size" -ge 224 ]; then batch=${BATCH:-32}; else batch=${BATCH:-128}; fi
pretrain() { "$dnal" config | sed -n "/^\\[pretrain\\]/,/^\\[/s/^$1 = //p"; }
momentum=$(pretrain momentum)
decay=$(pretrain weight_decay)

variants="nchw cl"
flags=$(lscpu | sed -n 's/^Flags: *//p')
bf16=$(echo "$flags" | tr ' ' '\n' | grep -x -E 'avx512_bf16|amx_bf16' | tr '\n' ' ' | sed 's/ $//')
[ -n "$bf16" ] && variants="$variants cl-bf16"
dnal_dtypes=f32
"$dnal" info | grep -q '^bf16=native$' && dnal_dtypes="f32 bf16"
isa=$(echo "$flags" | tr ' ' '\n' | grep -x -E 'avx2|avx512f|avx512_bf16|amx_bf16|amx_tile' | tr '\n' ',' | sed 's/,$//')
echo "machine cpu=\"$(lscpu | sed -n 's/^Model name: *//p')\" flags=$isa threads=$threads" \
    "model=$model image_size=$size batch=$batch steps=$steps warmup=$warmup momentum=$momentum weight_decay=$decay"

# "images_per_s step_ms conv_ms primitives_ms flops params" of dnal's bench line (in dtype $1)
dnal_run() {
    "$dnal" bench --set model.name="$model" --set data.batch="$batch" --set run.threads="$threads" \
        --set run.dtype="$1" --steps "$steps" --warmup "$warmup" >"$tmp/out"
    sed -n 's/^bench .* images_per_s=\([0-9.]*\) step_ms=\([0-9.]*\) .* primitives_ms=\([0-9.]*\) conv_ms=\([0-9.]*\) .* flops=\([0-9]*\) params=\([0-9]*\) .*/\1 \2 \4 \3 \5 \6/p' "$tmp/out"
}
torch_run() {
    "$python" "$here/torch_models.py" "$model" --variant "$1" --batch "$batch" --steps "$steps" \
        --warmup "$warmup" --threads "$threads" --momentum "$momentum" --weight-decay "$decay" >"$tmp/out"
    sed -n 's/^torch .* images_per_s=\([0-9.]*\) step_ms=\([0-9.]*\) .*/\1 \2/p' "$tmp/out"
}
# its fields, or exit 1 naming the run
fields() {
    [ -n "$2" ] && return 0
    echo "vs-pytorch.sh: no timing from the $1 run" >&2
    exit 1
}
clean=0
attempt=0
while [ "$clean" -lt "$pairs" ] && [ "$attempt" -lt $((3 * pairs)) ]; do
    attempt=$((attempt + 1))
    wait_quiet
    : >"$tmp/pair"
    busy=0
    for dt in $dnal_dtypes; do
        mark
        line=$(dnal_run "$dt")
        others
        fields "dnal-$dt" "$line"
        # shellcheck disable=SC2086 # the fields, split
        set -- $line
        if [ "$attempt" -eq 1 ] && [ "$dt" = f32 ]; then
            echo "check model=$model dnal_params=$6 torch_params=${counts%% *} dnal_flops=$5 torch_flops=$(echo "$counts" | cut -d' ' -f2)"
            if [ "$6 $5" != "$(echo "$counts" | cut -d' ' -f1-2)" ]; then
                echo "vs-pytorch.sh: the PyTorch $model differs from dnal's (parameters or FLOPs)" >&2
                exit 1
            fi
        fi
        above "$o" && busy=1
        impl=dnal
        [ "$dt" = f32 ] || impl=dnal-$dt
        echo "$impl $attempt $1 $2 $3 $4" >>"$tmp/pair"
        echo "run pair=$attempt impl=$impl images_per_s=$1 step_ms=$2 conv_ms=$3 primitives_ms=$4 others=$o"
    done
    for v in $variants; do
        mark
        line=$(torch_run "$v")
        others
        fields "torch-$v" "$line"
        # shellcheck disable=SC2086 # the fields, split
        set -- $line
        above "$o" && busy=1
        echo "$v $attempt $1 $2" >>"$tmp/pair"
        echo "run pair=$attempt impl=torch-$v images_per_s=$1 step_ms=$2 others=$o"
    done
    if [ "$busy" -eq 0 ]; then
        clean=$((clean + 1))
        cat "$tmp/pair" >>"$tmp/t"
    else
        echo "pair=$attempt not counted: others above $max_others"
        cat "$tmp/pair" >>"$tmp/busy"
    fi
done
if [ "$clean" -eq 0 ]; then # nothing better: every pair, said on the summary line
    echo "vs-pytorch.sh: no pair ran on a quiet machine; the summary is over busy pairs" >&2
    mv "$tmp/busy" "$tmp/t"
fi
median() { awk '{ print $1 }' | sort -g | awk '{ v[NR] = $1 } END { printf "%." p "f\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }' p="$1"; }
col() { awk -v k="$1" -v c="$2" '$1 == k { print $c }' "$tmp/t"; }
# a / b within each pair, then the median
pair_ratio() { awk -v a="$1" -v b="$2" '$1 == a { x[$2] = $3 } $1 == b { y[$2] = $3 } END { for (i in y) if (i in x) print x[i] / y[i] }' "$tmp/t" | median 3; }
summary="vs_pytorch model=$model batch=$batch pairs=$clean attempts=$attempt threads=$threads dnal_images_per_s=$(col dnal 3 | median 1)"
ratios=""
for v in $variants; do
    name=$(echo "$v" | tr '-' '_')
    summary="$summary torch_${name}_images_per_s=$(col "$v" 3 | median 1)"
    ratios="$ratios ratio_${name}=$(pair_ratio dnal "$v")"
done
if [ "$dnal_dtypes" != f32 ]; then
    summary="$summary dnal_bf16_images_per_s=$(col dnal-bf16 3 | median 1)"
    ratios="$ratios ratio_bf16_f32=$(pair_ratio dnal-bf16 dnal)"
    [ -n "$bf16" ] && ratios="$ratios ratio_bf16_cl_bf16=$(pair_ratio dnal-bf16 cl-bf16)"
fi
step=$(col dnal 4 | median 3)
conv=$(col dnal 5 | median 3)
echo "$summary$ratios dnal_step_ms=$step dnal_conv_ms=$conv dnal_primitives_ms=$(col dnal 6 | median 3)" \
    "step_per_conv=$(awk -v s="$step" -v c="$conv" 'BEGIN { printf "%.2f", s / c }')"
