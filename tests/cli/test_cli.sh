#!/bin/sh
# The dnal command line: help, info, and usage errors (exit 1 with a message).
# Speaks TAP. $DNAL is the binary under test.
DNAL=${DNAL:-./dnal}
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"; }
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$DNAL" --help >"$tmp/help" 2>&1; rc=$?
check "dnal --help exits 0" "[ $rc -eq 0 ]"
check "dnal --help lists info, train and bench" \
    "grep -q '^  info' '$tmp/help' && grep -q '^  train' '$tmp/help' && grep -q '^  bench' '$tmp/help'"

"$DNAL" info --help >"$tmp/ih" 2>&1; rc=$?
check "dnal info --help exits 0 and shows usage" "[ $rc -eq 0 ] && grep -q 'usage: dnal info' '$tmp/ih'"

"$DNAL" info >"$tmp/info" 2>&1; rc=$?
check "dnal info exits 0" "[ $rc -eq 0 ]"
for key in dnal_version onednn_version onednn_isa omp_threads mpi_library hdf5_version gsl_version; do
    check "dnal info prints $key" "grep -q '^$key=.' '$tmp/info'"
done
check "dnal info reports oneDNN 2.x" "grep -q '^onednn_version=2\.' '$tmp/info'"
check "dnal info says how this CPU runs bf16" "grep -Eq '^bf16=(none|emulated|native)$' '$tmp/info'"
check "dnal info reports the OpenMP threads (OMP_NUM_THREADS=3)" \
    "OMP_NUM_THREADS=3 '$DNAL' info | grep -q '^omp_threads=3$'"

"$DNAL" frobnicate >"$tmp/out" 2>"$tmp/err"; rc=$?
check "unknown subcommand exits 1" "[ $rc -eq 1 ]"
check "unknown subcommand is named in the message" "grep -q \"unknown subcommand 'frobnicate'\" '$tmp/err'"

"$DNAL" info --bogus >"$tmp/out" 2>"$tmp/err"; rc=$?
check "unknown flag exits 1" "[ $rc -eq 1 ]"
check "unknown flag is named in the message" "grep -q -- \"--bogus\" '$tmp/err'"

"$DNAL" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "no subcommand exits 1 with usage" "[ $rc -eq 1 ] && grep -q '^usage: dnal' '$tmp/err'"

# configuration errors: exit 1 before any work, naming the key and where
"$DNAL" train --set search.lamda=1 >"$tmp/out" 2>"$tmp/err"; rc=$?
check "dnal train: unknown key exits 1" "[ $rc -eq 1 ]"
check "dnal train: unknown key is named with --set" "grep -q \"\-\-set search.lamda=1: unknown key 'lamda'\" '$tmp/err'"
check "dnal train: nothing ran before the config error" "! grep -q '^eval\\|^stage=' '$tmp/out'"
printf '[data]\nbatch = 64\n[search]\nlambda = lots\n' >"$tmp/bad.ini"
"$DNAL" train -c "$tmp/bad.ini" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "dnal train: non-numeric value exits 1" "[ $rc -eq 1 ]"
check "dnal train: non-numeric value is named with FILE:LINE" "grep -q 'bad.ini:4: search.lambda: .lots. is not a number' '$tmp/err'"
"$DNAL" train --bogus >"$tmp/out" 2>"$tmp/err"; rc=$?
check "dnal train: unknown option exits 1" "[ $rc -eq 1 ] && grep -q -- '--bogus' '$tmp/err'"
"$DNAL" train --set model.name=resnet21 --set data.dataset=synthetic >"$tmp/out" 2>"$tmp/err"; rc=$?
check "dnal train: unknown model exits 1 naming it" "[ $rc -eq 1 ] && grep -q \"unknown model 'resnet21'\" '$tmp/err'"

# data errors: exit 2 naming the file
"$DNAL" train --set data.path="$tmp/nowhere" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "dnal train: missing dataset exits 2" "[ $rc -eq 2 ]"
check "dnal train: missing dataset names the file" "grep -q '$tmp/nowhere/train-images-idx3-ubyte' '$tmp/err'"
mkdir -p "$tmp/cifar" && head -c 5000 /dev/zero >"$tmp/cifar/data_batch_1.bin"
"$DNAL" train --set data.dataset=cifar10 --set data.path="$tmp/cifar" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "dnal train: truncated CIFAR file exits 2 naming it" "[ $rc -eq 2 ] && grep -q 'data_batch_1.bin' '$tmp/err'"

# a short real run: synthetic data, one epoch, an eval line
"$DNAL" train --set data.dataset=synthetic --set data.batch=32 --set pretrain.epochs=1 \
    --set model.name=resnet20 --set data.eval_limit=64 --set log.path="$tmp/run.h5" \
    --set checkpoint.dir="$tmp/checkpoints" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "dnal train on synthetic data exits 0" "[ $rc -eq 0 ]"
check "dnal train prints the resolved configuration" "grep -q '^batch = 32$' '$tmp/out'"
check "dnal train prints one eval line per epoch" \
    "[ \$(grep -c '^eval stage=pretrain epoch=1 top1=[0-9.]* top5=[0-9.]* loss=[0-9.]*$' '$tmp/out') -eq 1 ]"
"$DNAL" bench --set model.name=resnet20 --set data.batch=16 --steps 2 --warmup 1 >"$tmp/out" 2>"$tmp/err"; rc=$?
check "dnal bench prints the bench line" \
    "[ $rc -eq 0 ] && grep -q '^bench model=resnet20 batch=16 ranks=1 threads=[0-9]* images_per_s=[0-9.]* step_ms=[0-9.]* .*exposed_comm_ms=' '$tmp/out'"
check "dnal bench prints the conv share" "grep -q '^bench_layer kind=conv .*share=0\\.[0-9]*' '$tmp/out'"
# the layers' own times per step: conv_ms (convolutions) <= primitives_ms (every layer) <= step_ms
times=$(sed -n 's/^bench .* step_ms=\([0-9]*\.[0-9]*\) .* primitives_ms=\([0-9]*\.[0-9]*\) conv_ms=\([0-9]*\.[0-9]*\) .*/\1 \2 \3/p' "$tmp/out")
check "dnal bench prints primitives_ms and conv_ms, conv_ms <= primitives_ms <= step_ms ($times)" \
    "echo '$times' | awk 'NF == 3 && \$3 > 0 && \$3 <= \$2 && \$2 <= \$1 { ok = 1 } END { exit !ok }'"
# resnet20: 18 gated BNs (two in each of the 9 blocks) fold their gate; the
# ReLUs after BNs and adds fuse (how many depends on oneDNN's kernels)
check "dnal bench: 18 gates folded into BN, ReLUs fused" \
    "grep -q '^bench .* fused_gates=18 fused_relus=[1-9][0-9]* ' '$tmp/out'"
"$DNAL" bench --set model.name=resnet20 --set data.batch=16 --steps 1 --warmup 0 --no-fuse >"$tmp/out" 2>"$tmp/err"; rc=$?
check "dnal bench --no-fuse: nothing fused" "[ $rc -eq 0 ] && grep -q '^bench .* fused_gates=0 fused_relus=0 ' '$tmp/out'"

# dnal config: the resolved configuration and the key list, without MPI
TOP=${TOP:-$(dirname "$0")/../..}
"$DNAL" config --help >"$tmp/out" 2>&1; rc=$?
check "dnal config --help exits 0 and shows usage" "[ $rc -eq 0 ] && grep -q '^usage: dnal config' '$tmp/out'"
check "dnal --help lists config" "grep -q '^  config' '$tmp/help'"
"$DNAL" config >"$tmp/defaults.ini" 2>"$tmp/err"; rc=$?
check "dnal config prints the defaults and exits 0" \
    "[ $rc -eq 0 ] && grep -q '^\[run\]$' '$tmp/defaults.ini' && grep -q '^batch = 128$' '$tmp/defaults.ini'"
"$DNAL" config --list >"$tmp/list" 2>"$tmp/err"; rc=$?
check "dnal config --list exits 0" "[ $rc -eq 0 ]"
keys=$(grep -c '^[a-z0-9_]* =' "$tmp/defaults.ini")
check "dnal config --list has one line per key ($keys)" "[ \$(wc -l <'$tmp/list') -eq $keys ]"
set --
while read -r key type def rest; do
    [ "$def" = '""' ] && def=
    set -- "$@" --set "$key=$def"
done <"$tmp/list"
"$DNAL" config "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "every default of --list parses back to the defaults" "[ $rc -eq 0 ] && cmp -s '$tmp/out' '$tmp/defaults.ini'"
"$DNAL" config --set run.dtype=BF16 >"$tmp/out" 2>"$tmp/err"; rc=$?
check "dnal config --set run.dtype=BF16 is run.dtype=bf16" "[ $rc -eq 0 ] && grep -q '^dtype = bf16$' '$tmp/out'"
# bf16 on a CPU without it: capped to AVX2, oneDNN creates no bf16 primitive
ONEDNN_MAX_CPU_ISA=AVX2 "$DNAL" search --set run.dtype=bf16 --set log.path="$tmp/bf16.h5" \
    --set checkpoint.dir="$tmp/bf16ck" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "run.dtype=bf16 where oneDNN has no bf16 (ISA capped to avx2): exit 1 naming the ISA, before any work" \
    "[ $rc -eq 1 ] && grep -q 'run.dtype=bf16: .*(ISA [a-z0-9_]*)' '$tmp/err' && [ ! -e '$tmp/bf16.h5' ] && [ ! -e '$tmp/bf16ck' ]"
ONEDNN_MAX_CPU_ISA=AVX2 "$DNAL" info >"$tmp/info2" 2>&1
check "dnal info says bf16=none on avx2" "grep -q '^bf16=none$' '$tmp/info2'"
if grep -q '^onednn_isa=avx512_core' "$tmp/info"; then
    ONEDNN_MAX_CPU_ISA=AVX512_CORE "$DNAL" info >"$tmp/info3" 2>&1
    check "dnal info says bf16=emulated on avx512_core" "grep -q '^bf16=emulated$' '$tmp/info3'"
    ONEDNN_MAX_CPU_ISA=AVX512_CORE "$DNAL" bench --set run.dtype=bf16 --set model.name=resnet20 \
        --set data.batch=8 --steps 2 --warmup 1 >"$tmp/out" 2>"$tmp/err"; rc=$?
    check "bf16 emulated (ISA capped to avx512_core): a warning, once, and the bench runs" \
        "[ $rc -eq 0 ] && [ \$(grep -c 'warning: run.dtype=bf16 on ISA avx512_core is emulated' '$tmp/err') -eq 1 ] && grep -q 'dtype=bf16' '$tmp/out'"
else
    for t in "dnal info says bf16=emulated on avx512_core" "bf16 emulated: a warning, once"; do
        n=$((n + 1)); echo "ok $n - # SKIP $t: this CPU has no avx512_core"
    done
fi
"$DNAL" config --set model.name=resnet57 >"$tmp/out" 2>"$tmp/err"; rc=$?
check "dnal config: a model the zoo does not have exits 1 naming model.name and the zoo" \
    "[ $rc -eq 1 ] && grep -q \"model.name: unknown model 'resnet57' (known: .*resnet56\" '$tmp/err'"
"$DNAL" config --set search.lamda=1 >"$tmp/out" 2>"$tmp/err"; rc=$?
check "dnal config: unknown key exits 1 naming it" \
    "[ $rc -eq 1 ] && grep -q \"\-\-set search.lamda=1: unknown key 'lamda'\" '$tmp/err'"
"$DNAL" config -c "$tmp/bad.ini" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "dnal config: a bad file exits 1 with FILE:LINE" "[ $rc -eq 1 ] && grep -q 'bad.ini:4: search.lambda' '$tmp/err'"
"$DNAL" config --list --set data.batch=3 >"$tmp/out" 2>"$tmp/err"; rc=$?
check "dnal config --list takes no other arguments" "[ $rc -eq 1 ] && grep -q -- '--list' '$tmp/err'"
ini=$TOP/jobs/configs/cifar10-resnet56.ini
"$DNAL" config -c "$ini" >"$tmp/c10.ini" 2>"$tmp/err"; rc=$?
check "dnal config -c cifar10-resnet56.ini exits 0" "[ $rc -eq 0 ]"
for line in 'dataset = cifar10' 'batch = 256' 'name = resnet56' 'epochs = 30' 'beta_update = epoch' \
    'lambda = 5e-05' 'epochs = 70' 'schedule = step' 'milestones = 10,40'; do
    check "dnal config -c cifar10-resnet56.ini prints '$line'" "grep -q '^$line\$' '$tmp/c10.ini'"
done
"$DNAL" config -c "$tmp/c10.ini" --set model.width=0.5 >"$tmp/out" 2>"$tmp/err"; rc=$?
check "the printed configuration loads again (and --set applies after -c)" \
    "[ $rc -eq 0 ] && sed 's/^width = 1\$/width = 0.5/' '$tmp/c10.ini' | cmp -s - '$tmp/out'"

# -c NAME: a shipped config by name (installed; tests/build/test_install.sh
# runs one); a name that is neither a file nor shipped is exit 1 naming both
"$DNAL" config -c no-such-config >"$tmp/out" 2>"$tmp/err"; rc=$?
check "dnal config -c NAME of no file and no shipped config: exit 1 naming the configs folder" \
    "[ $rc -eq 1 ] && grep -q 'no such file, and no shipped config no-such-config(.ini) in .*/share/dnal/configs' '$tmp/err'"

# a resumed run takes its own allocation's threads, not the checkpoint's
(cd "$tmp" && OMP_NUM_THREADS=1 "$DNAL" train --set data.batch=64 --set data.train_limit=128 \
    --set data.eval_limit=64 --set pretrain.epochs=1 --set run.threads=1 --set checkpoint.dir=ck \
    --set log.path=run.h5 >train.out 2>&1); rc=$?
"$DNAL" config --resume "$tmp/ck" >"$tmp/res.ini" 2>"$tmp/err"; rc2=$?
check "dnal config --resume: the checkpoint's configuration, run.threads back to 0 (it had 1)" \
    "[ $rc -eq 0 ] && [ $rc2 -eq 0 ] && grep -q '^train_limit = 128\$' '$tmp/res.ini' && sed -n '/^\[run\]/,/^\[/p' '$tmp/res.ini' | grep -q '^threads = 0\$'"
"$DNAL" config --resume "$tmp/ck" --set run.threads=3 >"$tmp/res3.ini" 2>&1
check "... --set run.threads=3 on a resume applies" "sed -n '/^\[run\]/,/^\[/p' '$tmp/res3.ini' | grep -q '^threads = 3\$'"
"$DNAL" config --resume "$tmp/ck" -c "$ini" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "dnal config --resume with -c: exit 1" "[ $rc -eq 1 ] && grep -q 'not -c' '$tmp/err'"

echo "1..$n"
[ $fail -eq 0 ]
