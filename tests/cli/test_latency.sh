#!/bin/sh
# dnal profile and runs with its latency table, end to end on a Fashion-MNIST
# subset: the table's file and its layout, prune.channel_multiple=auto (the
# block dnal info names; every kept count a multiple of it), the latency
# regulariser (a note when the table is of another batch), the predicted and measured compact times in the prune line,
# the summary, the run log and a resumed run's summary; the compact model of
# an auto-pruned search evaluates as the run's pruned network; a table of
# another model (or of the same with another gate_stem, or of an imported
# ONNX network), a damaged table, a latency regulariser without a table and
# bad options are refused with their exit codes; an ONNX network profiles
# and searches with its own table. Speaks TAP. $DNAL is the
# binary under test.
DNAL=${DNAL:-./dnal}
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$(dirname "$0")/../tap.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
small="--set data.train_limit=256 --set data.eval_limit=64 --set data.batch=16"
short="--set pretrain.epochs=1 --set search.epochs=1 --set finetune.epochs=0.5 --set log.every=4"
py=/usr/bin/python3

"$DNAL" info >info.out 2>&1
block=$(sed -n 's/^conv_layout=.* channel_block=\([0-9]*\)$/\1/p' info.out)
layout=$(sed -n 's/^conv_layout=\([^ ]*\) .*/\1/p' info.out)
check "dnal info names the channel block of its convolutions' layout ($layout: $block)" \
    "[ -n '$block' ] && [ '$block' -ge 1 ]"

"$DNAL" profile $small --reps 1 -o t.h5 >prof.out 2>&1
rc=$?
check "dnal profile exits 0" "[ $rc -eq 0 ]"
# the network's layout is the convolutions' blocked one where it serves every
# layer, else channels last (SSE4.1 has no blocked kernel for the 1-channel
# stem); the block is the convolutions' either way
check "profile line: model, input, batch, threads, ISA, layout ($layout or acdb), block, times, seconds" \
    "grep -q '^profile model=resnet20 image_size=28 batch=16 ranks=1 threads=[0-9]* isa=[a-z0-9_]* layout=\\($layout\\|acdb\\) block=$block train_step_ms=[0-9.]* infer_step_ms=[0-9.]* seconds=[0-9.]* path=t.h5$' prof.out"
kinds() { grep -c "^profile_layer name=.* kind=$1 " prof.out; }
check "a profile_layer line for every layer that runs (resnet20: 19 conv, 19 BN, 9 add, 2 pools, 2 pads, gap, fc, loss; a ReLU of its own only where the layout fuses none into BN)" \
    "[ \$(kinds conv) -eq 19 ] && [ \$(kinds bn) -eq 19 ] && [ \$(kinds add) -eq 9 ] && [ \$((\$(grep -c '^profile_layer name=' prof.out) - \$(kinds relu))) -eq 54 ]"
cat >layout.py <<'EOF'
import h5py, sys
f = h5py.File(sys.argv[1], "r")
b = int(f.attrs["block"])
assert f.attrs["format"] == b"dnal-latency" or f.attrs["format"] == "dnal-latency"
for a in ("model", "image_size", "batch", "threads", "isa", "layout", "train_step_ms", "infer_step_ms"):
    assert a in f.attrs, a
c = f["layers/layer3.1.conv1/channels"][()]
assert list(c) == list(range(b, 64, b)) + [64], c
assert list(f["layers/layer3.1.conv1/in/channels"][()]) == list(c)
assert len(f["layers/layer3.1.conv1/train_ms"][()]) == len(c)
assert "in" not in f["layers/stem.conv"], "the network input never shrinks"
assert len(f["gates"]) == 18 and list(f["gates/layer2.0.gate1/channels"][()])[-1] == 32
print("ok")
EOF
check "the table's layout: attributes, /layers curves in steps of the block, /gates" \
    "[ \"\$($py layout.py t.h5 2>&1)\" = ok ]"

# a search with the table: the latency regulariser, auto multiples
"$DNAL" search $small $short --set search.latency_table=t.h5 --set search.regularizer=latency \
    --set prune.channel_multiple=auto --set checkpoint.dir=ck >run.out 2>&1
rc=$?
check "search with search.latency_table and regularizer=latency exits 0" "[ $rc -eq 0 ]"
check "search progress lines give the predicted time under the gates" \
    "grep -q '^stage=search .* flops=[0-9.]* time=[0-9.]* lr=' run.out"
check "prune line: channel_multiple=$block auto_from=$layout, the compact network's layout" \
    "grep -q '^prune flops=[0-9.]* params=[0-9.]* flops_authors=[0-9.]* params_authors=[0-9.]* channel_multiple=$block auto_from=$layout compact_layout=[a-zA-Z0-9]*$' run.out"
awk -v b="$block" '/^gated layer/ { t = 1; next } t && /^all / { exit } t { if ($3 % b != 0 && $3 != $2) bad = bad " " $1 }
    END { print bad }' run.out >notmult
check "every kept count a multiple of $block (or the layer's all)" "[ ! -s notmult ] || [ \"\$(cat notmult)\" = '' ]"
check "prune_latency line: measured and predicted dense and compact times and ratios" \
    "grep -q '^prune_latency of=train dense_ms=[0-9.]* compact_ms=[0-9.]* ratio=[0-9.]* predicted_dense_ms=[0-9.]* predicted_compact_ms=[0-9.]* predicted_ratio=[0-9.]*$' run.out"
check "summary gives the measured and predicted times" \
    "grep -q '^summary flops_dense=.* top1_final=[0-9.]* time_of=train time_ratio=[0-9.]* predicted_ratio=[0-9.]* time_compact_ms=[0-9.]* predicted_compact_ms=[0-9.]*$' run.out"
cat >log.py <<'EOF'
import h5py, sys
a = h5py.File(sys.argv[1], "r")["arch"].attrs
for k in ("time_dense_ms", "time_compact_ms", "time_ratio", "predicted_dense_ms",
          "predicted_compact_ms", "predicted_ratio"):
    assert a[k] > 0, k
assert a["time_of"] in (b"train", "train")
print("ok")
EOF
check "run log: /arch attributes time_of, time_*_ms, predicted_*" "[ \"\$($py log.py run.h5 2>&1)\" = ok ]"
pruned=$(sed -n 's/^summary.*top1_pruned=\([0-9.]*\) .*/\1/p' run.out)
"$DNAL" export ck/search.h5 -o auto.h5 >export.out 2>&1
"$DNAL" eval auto.h5 $small >eval.out 2>&1
check "export of the searched checkpoint prunes with auto as the run did (top1 $pruned)" \
    "grep -q '^eval stage=model epoch=0 top1=$pruned ' eval.out"

# a time budget: the fit at prune lands the predicted time at most at the
# target and within a block's worth of it. The table's times are replaced
# by made-up ones (each layer's time its channel count; a conv's input
# curve scaled to meet its output curve at dense) so that the check does
# not depend on how busy the machine was when it profiled
cat >madeup.py <<'EOF'
import h5py, shutil, sys
shutil.copy(sys.argv[1], sys.argv[2])
f = h5py.File(sys.argv[2], "r+")
total = 0.0
for name, g in f["layers"].items():
    dense_in, dense_out = float(g.attrs["in_channels"]), float(g.attrs["out_channels"])
    for sub, scale in (("", 1.0), ("in/", dense_out / dense_in), ("scatter/", 1.0), ("widen/", 1.0)):
        if sub and sub[:-1] not in g:
            continue
        c = g[sub + "channels"][()].astype(float)
        for w in ("train_ms", "infer_ms"):
            g[sub + w][...] = c * scale
    total += float(g["train_ms"][-1])
for w in ("train", "infer"):
    f.attrs[w + "_layers_ms"] = total
    f.attrs[w + "_step_ms"] = 1.1 * total
del f["gates"]
print("ok")
EOF
check "a made-up table of the profiled one" "[ \"\$($py madeup.py t.h5 m.h5 2>&1)\" = ok ]"
"$DNAL" search $small $short --set search.latency_table=m.h5 --set search.latency_target=0.6 \
    --set search.regularizer=latency --set prune.channel_multiple=auto --set checkpoint.dir=ck3 \
    --set log.path=run3.h5 >target.out 2>&1
rc=$?
pr=$(sed -n 's/^prune_latency .* predicted_ratio=\([0-9.]*\)$/\1/p' target.out)
check "search.latency_target=0.6: exit 0, the predicted time $pr of dense, in [0.55, 0.6]" \
    "[ $rc -eq 0 ] && awk -v p='$pr' 'BEGIN { exit !(p != \"\" && p <= 0.6 && p >= 0.55) }'"
"$DNAL" export ck3/search.h5 -o t3.h5 >export3.out 2>&1
check "export of its searched checkpoint fits the same time budget (the run's FLOPs)" \
    "grep -q \"flops=\$(sed -n 's/^summary.* flops_compact=\\([0-9]*\\) .*/\\1/p' target.out) \" export3.out"
"$DNAL" search $small --set search.flops_target=0.3 --set prune.channel_multiple=64 >ffloor.out 2>&1
rc=$?
check "a FLOPs target below the smallest network of 64-channel multiples: exit 1 before any work" \
    "[ $rc -eq 1 ] && grep -q 'search.flops_target=0.3 is out of reach: .* in multiples of 64) costs' ffloor.out && ! grep -q '^stage=' ffloor.out"
"$DNAL" search $small --set search.latency_table=t.h5 --set search.latency_target=0.05 >floor.out 2>&1
rc=$?
check "a latency target below the smallest network pruning allows: exit 1 naming the key ($(tail -1 floor.out | cut -c1-90))" \
    "[ $rc -eq 1 ] && grep -q 'search.latency_target=0.05 is out of reach: the smallest network pruning allows' floor.out"
check "a table of this run's batch and dtype gives no note of them" \
    "grep -q 'out of reach' floor.out && ! grep -q 'measured at a batch' floor.out"
"$DNAL" search $small --set data.batch=8 --set search.latency_table=t.h5 \
    --set search.latency_target=0.05 >batch.out 2>&1
check "a table measured at another batch: a note naming both batches before the run goes on" \
    "grep -q 'note: t.h5 was measured at a batch of 16 per process in f32, this run has 8 in f32' batch.out"
"$DNAL" search $small --set search.latency_table=t.h5 --set search.latency_target=0.5 \
    --set search.flops_target=0.5 >both.out 2>&1
rc=$?
check "flops_target and latency_target together: exit 1 (one budget)" \
    "[ $rc -eq 1 ] && grep -q 'a run has one budget' both.out"

# a run that stops after prune and is resumed keeps the times for its summary
"$DNAL" search $small $short --set search.latency_table=t.h5 --set run.stages=pretrain,search,prune \
    --set checkpoint.dir=ck2 --set log.path=run2.h5 >part.out 2>&1
ratio=$(sed -n 's/^prune_latency .* ratio=\([0-9.]*\) predicted_dense_ms.*/\1/p' part.out)
cp -r ck2 ck2b
"$DNAL" search --resume ck2 --set run.stages=pretrain,search,prune,finetune >resumed.out 2>&1
check "a resumed run's summary has the times measured at prune (ratio $ratio)" \
    "[ -n '$ratio' ] && grep -q '^summary .* time_of=train time_ratio=$ratio ' resumed.out"
"$DNAL" search --resume ck2b --set run.stages=pretrain,search,prune,finetune \
    --set log.path=run2b.h5 >resumedb.out 2>&1
check "resumed into a new run log, its /arch has those times too" \
    "[ \"\$($py -c 'import h5py,sys; print(\"%.4f\" % h5py.File(sys.argv[1], \"r\")[\"arch\"].attrs[\"time_ratio\"])' run2b.h5 2>&1)\" = '$ratio' ]"

# refusals
"$DNAL" search $small --set search.regularizer=latency >nolat.out 2>&1
rc=$?
check "regularizer=latency without a table: exit 1 naming the keys" \
    "[ $rc -eq 1 ] && grep -q 'search.regularizer=latency needs search.latency_table' nolat.out"
"$DNAL" search $small --set model.name=resnet56 --set search.latency_table=t.h5 >other.out 2>&1
rc=$?
check "a table of another model: exit 2 naming the file and both models" \
    "[ $rc -eq 2 ] && grep -q 't.h5: a table of resnet20 .* this network is resnet56' other.out"
"$DNAL" search $small --set model.gate_stem=true --set search.latency_table=t.h5 >stem.out 2>&1
rc=$?
check "a table of the ungated stem for model.gate_stem=true: exit 2 naming both" \
    "[ $rc -eq 2 ] && grep -q 't.h5: a table of resnet20 with gate_stem=0 .* this network has gate_stem=1' stem.out"
# an imported network is profiled as a run builds it: its file's path and SHA-256 in the table
cp "$TOP/tests/ref/onnx/resnet20.onnx" net.onnx
onnx="--set model.name=onnx --set model.path=$tmp/net.onnx"
"$DNAL" profile $small $onnx --reps 1 -o o.h5 >oprof.out 2>&1
rc=$?
check "dnal profile of an ONNX network exits 0 ($(tail -1 oprof.out | cut -c1-60))" \
    "[ $rc -eq 0 ] && grep -q '^profile model=onnx ' oprof.out"
check "its table names the file and its SHA-256" \
    "[ \"\$($py -c 'import h5py,sys; f = h5py.File(sys.argv[1], \"r\"); print(f.attrs[\"model_sha256\"].decode() if isinstance(f.attrs[\"model_sha256\"], bytes) else f.attrs[\"model_sha256\"])' o.h5 2>&1)\" = \"\$(sha256sum net.onnx | cut -d' ' -f1)\" ]"
"$DNAL" search $small --set search.latency_table=o.h5 >zoo_o.out 2>&1
rc=$?
check "the ONNX network's table for the zoo's resnet20: exit 2" \
    "[ $rc -eq 2 ] && grep -q 'o.h5: a table of onnx' zoo_o.out"
"$DNAL" search $small $short $onnx --set search.latency_table=o.h5 --set search.regularizer=latency \
    --set run.stages=pretrain,search,prune --set pretrain.epochs=0.25 --set search.epochs=0.25 \
    --set checkpoint.dir=ck4 --set log.path=run4.h5 >osearch.out 2>&1
rc=$?
check "a search of the ONNX network with its table and the latency regulariser ($(tail -1 osearch.out | cut -c1-60))" \
    "[ $rc -eq 0 ] && grep -q '^prune_latency of=train ' osearch.out"
head -c 3000 t.h5 >cut.h5
"$DNAL" search $small --set search.latency_table=cut.h5 >cut.out 2>&1
rc=$?
check "a truncated table: exit 2 naming it" "[ $rc -eq 2 ] && grep -q 'cut.h5' cut.out"
"$DNAL" search $small --set search.latency_table=ck/model.h5 >notlat.out 2>&1
rc=$?
check "a model file as the table: exit 2 (not a dnal latency table)" \
    "[ $rc -eq 2 ] && grep -q 'ck/model.h5: not a dnal latency table' notlat.out"
"$DNAL" profile --reps 0 >reps.out 2>&1
rc=$?
check "dnal profile --reps 0: exit 1" "[ $rc -eq 1 ] && grep -q 'reps needs a count' reps.out"
"$DNAL" search $small --set prune.channel_multiple=0 >zero.out 2>&1
rc=$?
check "prune.channel_multiple=0: exit 1 (auto or >= 1)" \
    "[ $rc -eq 1 ] && grep -q 'prune.channel_multiple must be auto or >= 1' zero.out"

echo "1..$n"
[ "$fail" -eq 0 ]
