#!/bin/sh
# ONNX in and out through dnal (about 30 s): the plan of an imported
# PyTorch ResNet-20 (tests/ref/onnx/, tests/ref/make_onnx_models.py); a
# short search of it from its own weights (run.stages=search,prune,finetune)
# that prunes, finetunes and exports to ONNX (BN kept and folded) which
# Debian's onnx checker accepts, ONNX Runtime (onnxruntime-node, from
# tests/onnx/ort_logits.js) runs to dnal's logits within 1e-4, and dnal
# imports again to the same logits; a checkpoint refuses a changed file;
# clear refusals (exit 1 naming node, operator and what dnal supports) of
# unsupported operators, attributes, dynamic dimensions, opsets, graphs the
# gate rule cannot gate safely, a mismatch with the data; exit 2 for files
# that are not well-formed models; the committed protobuf-c code is what
# protoc-c makes of onnx.proto. Parts needing python3-onnx, npm or protoc-c
# are skipped, named, where they are missing. Speaks TAP.
# $DNAL is the binary under test, $TOP the source tree.
DNAL=${DNAL:-./dnal}
DNAL=$(cd "$(dirname "$DNAL")" && pwd)/$(basename "$DNAL")
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$(dirname "$0")/../tap.sh"
LOGITS=$(cd "$(dirname "$DNAL")" && pwd)/tests/unit/onnx_logits
skip() { n=$((n + 1)); echo "ok $n # SKIP $1"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
cp "$TOP/tests/ref/onnx/resnet20.onnx" net.onnx
small="--set data.train_limit=256 --set data.eval_limit=128 --set data.batch=64"
onnx="--set model.name=onnx --set model.path=net.onnx"
# max |a - b| / max |b| of two files of little-endian floats
rel() {
    od -An -v -f "$1" | tr -s ' ' '\n' | grep -v '^$' >rel.a
    od -An -v -f "$2" | tr -s ' ' '\n' | grep -v '^$' >rel.b
    [ "$(wc -l <rel.a)" -eq "$(wc -l <rel.b)" ] || { echo 1; return; }
    paste rel.a rel.b | awk '{d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d;
        s = $2 < 0 ? -$2 : $2; if (s > M) M = s} END {printf "%.3g\n", m / M}'
}
small_enough() { awk -v x="$1" 'BEGIN {exit !(x ~ /^[0-9][0-9.e+-]*$/ && x + 0 <= 1e-4)}'; }

# ---- the plan
"$DNAL" info $onnx >plan.out 2>plan.err
check "dnal info prints the plan of the imported network ($(tail -1 plan.out))" \
    "grep -q '^plan gates=18 gated_channels=168 flops=1947616 params=17254\$' plan.out"
check "the plan gates each residual branch's two convs (18 of 19 convs, the zoo's rule)" \
    "[ \$(grep -c '^plan layer=.* kind=conv .* gate=layer[123]\.[012]\.bn[12]\.gate ' plan.out) -eq 18 ]"
check "the stem stays ungated as the residual stream, named with its ONNX node" \
    "grep -q '^plan layer=conv1 kind=conv .* gate=- why=\"residual stream\" .* node=/conv1/Conv\$' plan.out"
"$DNAL" info $onnx --set model.no_gate=/layer1/layer1.0/conv1/Conv,layer3.2.bn2 >ng.out 2>&1
check "model.no_gate by ONNX node or layer name leaves those convs ungated" \
    "grep -q '^plan gates=16 ' ng.out && grep -q 'layer=layer3.2.conv2 .*why=\"model.no_gate\"' ng.out"
"$DNAL" info $onnx --set model.no_gate=nothing >ng2.out 2>&1
rc=$?
check "model.no_gate naming no node is exit 1 ($(cat ng2.out))" "[ $rc -eq 1 ] && grep -q \"'nothing'\" ng2.out"
for key in model.gate_stem model.classifier_bn; do
    "$DNAL" info $onnx --set $key=true >zk.out 2>&1
    rc=$?
    check "$key=true with an ONNX graph is exit 1 naming it ($(cat zk.out))" \
        "[ $rc -eq 1 ] && grep -q 'model.no_gate places' zk.out"
done

# ---- search the imported network from its own weights, prune, finetune, export
"$DNAL" search $onnx $small --set run.stages=search,prune,finetune --set search.epochs=1 \
    --set finetune.epochs=1 --set search.lambda=0.05 --set checkpoint.dir=ck >run.out 2>run.err
rc=$?
check "a search of the imported network exits 0 ($(tail -1 run.err))" "[ $rc -eq 0 ]"
dense=$(sed -n 's/^summary flops_dense=\([0-9]*\) .*/\1/p' run.out)
compact=$(sed -n 's/^summary.*flops_compact=\([0-9]*\) .*/\1/p' run.out)
check "it prunes ($compact of $dense FLOPs) and finetunes" \
    "[ -n \"$compact\" ] && [ $compact -lt $dense ] && grep -q '^eval stage=finetune ' run.out"
"$DNAL" export ck/finetune.h5 -o c.onnx >exp.out 2>&1 &&
    "$DNAL" export ck/finetune.h5 -o cf.onnx --fold-bn >>exp.out 2>&1 &&
    "$DNAL" export ck/finetune.h5 -o c.h5 >>exp.out 2>&1
rc=$?
check "dnal export writes ONNX by extension, folded with --fold-bn, and h5 ($(tail -1 exp.out))" \
    "[ $rc -eq 0 ] && [ \$(grep -c 'format=onnx' exp.out) -eq 2 ] && grep -q 'flops=$compact .*path=c.h5\$' exp.out"
"$DNAL" export ck/finetune.h5 -o x.h5 --fold-bn >bad.out 2>&1
rc=$?
check "--fold-bn with an h5 file is exit 1" "[ $rc -eq 1 ]"
final=$(sed -n 's/^summary.*top1_final=\([0-9.]*\)$/\1/p' run.out)
"$DNAL" eval ck/model.h5 $small >eval.out 2>&1
check "dnal eval of the run's model file gives top1_final ($final)" \
    "grep -q '^eval stage=model epoch=0 top1=$final ' eval.out"
"$DNAL" bench $onnx --set data.batch=8 --steps 2 --warmup 1 >bench.out 2>&1
check "dnal bench of the imported network ($(tail -1 bench.out | cut -c1-60))" \
    "grep -q '^bench model=onnx batch=8 ' bench.out"
"$LOGITS" --model ck/model.h5 --batch 4 d >/dev/null 2>logits.err
check "dnal's logits of the run's compact model ($(tail -1 logits.err))" "[ -s d.logits.f32 ]"

if /usr/bin/python3 -c 'import onnx' 2>/dev/null; then
    /usr/bin/python3 - c.onnx cf.onnx >checker.out 2>&1 <<'PY'
import sys, onnx
for f in sys.argv[1:]:
    m = onnx.load(f)
    onnx.checker.check_model(m, full_check=True)
    dims = [d.dim_param or d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
    assert m.opset_import[0].version == 13 and dims[0] == "batch", (m.opset_import, dims)
    print(f, "ok", [n.op_type for n in m.graph.node].count("BatchNormalization"), "BN")
PY
    rc=$?
    check "Debian's onnx checker (full_check) accepts both exports: opset 13, dynamic batch ($(tr '\n' ' ' <checker.out))" \
        "[ $rc -eq 0 ] && grep -q 'cf.onnx ok 0 BN' checker.out"
else
    skip "python3-onnx is missing: Debian's onnx checker not run (jobs/setup.sh installs it)"
fi

# ---- ONNX Runtime
ort=${DNAL_ORT_DIR:-${HOME:-/tmp}/.cache/dnal-ort}
if [ ! -d "$ort/node_modules/onnxruntime-node" ] && command -v npm >/dev/null 2>&1; then
    mkdir -p "$ort" && (cd "$ort" && npm install --ignore-scripts --no-audit --no-fund onnxruntime-node >npm.log 2>&1)
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    skip "npm or node is missing: ONNX Runtime not run"
    skip "npm or node is missing: ONNX Runtime not run (folded BN)"
elif [ ! -d "$ort/node_modules/onnxruntime-node" ]; then
    skip "npm install --ignore-scripts onnxruntime-node into $ort failed: ONNX Runtime not run"
    skip "onnxruntime-node is missing (folded BN)"
else
    for f in c cf; do
        NODE_PATH="$ort/node_modules" node "$TOP/tests/onnx/ort_logits.js" $f.onnx d.input.f32 4 1 28 28 $f.ort.f32 >ort.out 2>&1
        err=$(rel $f.ort.f32 d.logits.f32)
        check "ONNX Runtime runs $f.onnx to dnal's logits (max |diff| / max |dnal| = $err; $(tr '\n' ' ' <ort.out))" \
            "small_enough '$err'"
    done
fi
"$LOGITS" --onnx c.onnx --batch 4 --input d.input.f32 re >/dev/null 2>re.err
err=$(rel re.logits.f32 d.logits.f32)
check "dnal imports its export again to the same logits ($err $(tail -1 re.err))" "small_enough '$err'"
"$LOGITS" --onnx cf.onnx --batch 4 --input d.input.f32 ref >/dev/null 2>&1
err=$(rel ref.logits.f32 d.logits.f32)
check "and the folded export too ($err)" "small_enough '$err'"

# ---- a checkpoint names its file: another file under that name is refused
# (the same graph and weights with a doc_string: field 6 of ModelProto, appended)
printf '\062\001A' >>net.onnx
"$DNAL" info $onnx >same.out 2>&1
check "the changed file still imports (the same network)" "grep -q '^plan gates=18 ' same.out"
"$DNAL" export ck/search.h5 -o y.onnx >chg.out 2>&1
rc=$?
check "a changed ONNX file is exit 2 naming both SHA-256 ($(cat chg.out))" \
    "[ $rc -eq 2 ] && grep -q 'SHA-256' chg.out"
"$DNAL" search --resume ck $small >res.out 2>&1
rc=$?
check "and so is resuming on it (exit $rc)" "[ $rc -eq 2 ] && grep -q 'SHA-256' res.out"
cp "$TOP/tests/ref/onnx/resnet20.onnx" net.onnx

# ---- refusals
"$DNAL" search --set model.name=onnx --set model.path="$TOP/tests/ref/onnx/resnet18.onnx" $small >mm.out 2>&1
rc=$?
check "an input other than the data's is exit 1 naming both ($(cat mm.out))" \
    "[ $rc -eq 1 ] && grep -q '3x32x32' mm.out && grep -q '1x28x28' mm.out"
head -c 3000 net.onnx >trunc.onnx
"$DNAL" info --set model.name=onnx --set model.path=trunc.onnx >tr.out 2>&1
rc=$?
check "a truncated file is exit 2 ($(cat tr.out))" "[ $rc -eq 2 ] && grep -q 'trunc.onnx' tr.out"
"$DNAL" info --set model.name=onnx --set model.path=missing.onnx >ms.out 2>&1
rc=$?
check "a missing file is exit 2" "[ $rc -eq 2 ] && grep -q 'missing.onnx' ms.out"
mkfifo fifo.onnx
timeout 20 "$DNAL" info --set model.name=onnx --set model.path=fifo.onnx >ff.out 2>&1
rc=$?
check "a FIFO is not opened for reading (exit $rc: $(cat ff.out))" "[ $rc -eq 2 ] && grep -q 'not a regular file' ff.out"
"$DNAL" config --set model.name=onnx >np.out 2>&1
rc=$?
check "model.name=onnx without model.path is exit 1" "[ $rc -eq 1 ] && grep -q 'model.path' np.out"

if /usr/bin/python3 -c 'import onnx' 2>/dev/null; then
    /usr/bin/python3 - >gen.out 2>&1 <<'PY'
import numpy as np, onnx
from onnx import helper as h, TensorProto as T, numpy_helper as nh
rng = np.random.default_rng(0)
def w(name, *shape):
    return nh.from_array(rng.standard_normal(shape).astype(np.float32), name)
def bn(x, c, name, out):
    inits = [nh.from_array(np.ones(c, np.float32), name + ".weight"),
             nh.from_array(np.zeros(c, np.float32), name + ".bias"),
             nh.from_array(np.zeros(c, np.float32), name + ".running_mean"),
             nh.from_array(np.ones(c, np.float32), name + ".running_var")]
    return h.make_node("BatchNormalization", [x] + [i.name for i in inits], [out], name=name), inits
def model(nodes, inits, name, opset=13, shape=("N", 1, 28, 28)):
    g = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.FLOAT, shape)],
                     [h.make_tensor_value_info("y", T.FLOAT, ("N", 10))], inits)
    onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", opset)]), name)
def head(x, c):
    return ([h.make_node("GlobalAveragePool", [x], ["p"], name="pool"),
             h.make_node("Flatten", ["p"], ["f"], name="flat", axis=1),
             h.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["y"], name="fc", transB=1)],
            [w("fc.weight", 10, c), w("fc.bias", 10)])
def net(extra_node=None, conv_attrs={}, opset=13, shape=("N", 1, 28, 28), name="m.onnx"):
    b, bi = bn("c", 8, "bn", "b")
    nodes = [h.make_node("Conv", ["x", "conv.weight"], ["c"], name="conv", pads=[1] * 4, **conv_attrs), b,
             h.make_node("Relu", ["b"], ["r"], name="relu")]
    last = "r"
    if extra_node:
        nodes.append(h.make_node(extra_node, ["r"], ["e"], name="odd"))
        last = "e"
    hn, hi = head(last, 8)
    model(nodes + hn, [w("conv.weight", 8, 1, 3, 3)] + bi + hi, name, opset, shape)
net(name="ok.onnx")
net("Sigmoid", name="sigmoid.onnx")
net(conv_attrs={"dilations": [2, 2]}, name="dilated.onnx")
net(shape=("N", 1, "H", 28), name="dynamic.onnx")
net(opset=10, name="opset10.onnx")
# a depthwise conv on the residual stream: its gate would govern the stream
b0, i0 = bn("c", 8, "bn0", "b0")
b1, i1 = bn("d", 8, "bn1", "b1")
hn, hi = head("s", 8)
model([h.make_node("Conv", ["x", "conv0.weight"], ["c"], name="conv0", pads=[1] * 4), b0,
       h.make_node("Relu", ["b0"], ["r"], name="relu"),
       h.make_node("Conv", ["r", "dw.weight"], ["d"], name="dw", pads=[1] * 4, group=8), b1,
       h.make_node("Add", ["b1", "r"], ["s"], name="add")] + hn,
      [w("conv0.weight", 8, 1, 3, 3), w("dw.weight", 8, 1, 3, 3)] + i0 + i1 + hi, "dwstream.onnx")
# the other operators, for ONNX Runtime: Clip(0, 6), MaxPool, AveragePool,
# Reshape, MatMul + Add, Dropout, Gemm with transB=0, a conv with a bias and no BN
b2, i2 = bn("c2", 8, "bn2", "b2")
ops = [h.make_node("Conv", ["x", "ca.weight", "ca.bias"], ["c1"], name="ca", pads=[1] * 4),
       h.make_node("Clip", ["c1", "zero", "six"], ["r1"], name="clip"),
       h.make_node("MaxPool", ["r1"], ["m1"], name="maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4),
       h.make_node("Conv", ["m1", "cb.weight"], ["c2"], name="cb", pads=[1] * 4, strides=[1, 1]), b2,
       h.make_node("Relu", ["b2"], ["r2"], name="relu2"),
       h.make_node("AveragePool", ["r2"], ["a2"], name="avgpool", kernel_shape=[2, 2], strides=[2, 2]),
       h.make_node("Reshape", ["a2", "shape"], ["f"], name="reshape"),
       h.make_node("MatMul", ["f", "mm.weight"], ["mm"], name="matmul"),
       h.make_node("Add", ["mm", "mm.bias"], ["ma"], name="matmul_bias"),
       h.make_node("Relu", ["ma"], ["r3"], name="relu3"),
       h.make_node("Dropout", ["r3"], ["d3"], name="dropout"),
       h.make_node("Gemm", ["d3", "g.weight", "g.bias"], ["y"], name="gemm")]
model(ops, [w("ca.weight", 6, 1, 3, 3), w("ca.bias", 6), nh.from_array(np.float32(0), "zero"),
            nh.from_array(np.float32(6), "six"), w("cb.weight", 8, 6, 3, 3),
            nh.from_array(np.array([0, -1], np.int64), "shape"), w("mm.weight", 8 * 7 * 7, 16),
            w("mm.bias", 16), w("g.weight", 16, 10), w("g.bias", 10)] + i2, "ops.onnx")
# an initializer whose data is shorter than its dims
m = onnx.load("ok.onnx")
m.graph.initializer[0].raw_data = m.graph.initializer[0].raw_data[:-4]
onnx.save(m, "short.onnx")
print("generated")
PY
    check "python3-onnx writes the refused models ($(tail -1 gen.out))" "grep -q generated gen.out"
    refuse() { # FILE CODE WHAT GREP...
        f=$1 code=$2 what=$3; shift 3
        "$DNAL" info --set model.name=onnx --set model.path=$f >r.out 2>&1
        rc=$?
        ok=1
        for pat in "$@"; do grep -q -- "$pat" r.out || ok=0; done
        check "$what: exit $code ($(cat r.out | cut -c1-240))" "[ $rc -eq $code ] && [ $ok -eq 1 ]"
    }
    "$DNAL" info --set model.name=onnx --set model.path=ok.onnx >ok.out 2>&1
    check "the hand-made model itself imports (its conv gated)" "grep -q '^plan gates=1 ' ok.out"
    refuse sigmoid.onnx 1 "an unsupported operator" "node odd (Sigmoid)" "dnal imports Conv, BatchNormalization"
    refuse dilated.onnx 1 "an unimplemented attribute value" "node conv (Conv)" "dilations 2,2"
    refuse dynamic.onnx 1 "a dynamic dimension other than the batch" "dimension H is dynamic"
    refuse opset10.onnx 1 "an opset below 11" "opset 10"
    refuse dwstream.onnx 1 "a gate that would govern the residual stream" "node dw (Conv)" "model.no_gate=dw"
    "$DNAL" info --set model.name=onnx --set model.path=dwstream.onnx --set model.no_gate=dw >dw.out 2>&1
    check "with model.no_gate=dw the same graph imports ungated" "grep -q '^plan gates=0 ' dw.out"
    "$DNAL" info --set model.name=onnx --set model.path=ops.onnx >ops.out 2>&1
    check "Clip, MaxPool, AveragePool, Reshape, MatMul + Add, Dropout, Gemm import ($(tail -1 ops.out))" \
        "grep -q '^plan gates=2 ' ops.out && grep -q '^plan layer=mm kind=linear in=8 out=16 .* node=matmul\$' ops.out"
    if [ -d "$ort/node_modules/onnxruntime-node" ] && command -v node >/dev/null 2>&1; then
        "$LOGITS" --onnx ops.onnx --batch 4 --input d.input.f32 ops >/dev/null 2>&1
        NODE_PATH="$ort/node_modules" node "$TOP/tests/onnx/ort_logits.js" ops.onnx d.input.f32 4 1 28 28 ops.ort.f32 >/dev/null 2>&1
        err=$(rel ops.logits.f32 ops.ort.f32)
        check "and give ONNX Runtime's logits ($err)" "small_enough '$err'"
    else
        skip "onnxruntime-node is missing: the other operators not compared with ONNX Runtime"
    fi
    refuse short.onnx 2 "an initializer shorter than its dims" "tensor conv.weight"
    printf 'not a model at all, just text\n' >text.onnx
    refuse text.onnx 2 "a file that is not a protobuf ModelProto" "not an ONNX model"
else
    skip "python3-onnx is missing: refusals of hand-made models not run (jobs/setup.sh installs it)"
fi

# ---- the committed protobuf-c code is what protoc-c makes of the committed onnx.proto
if command -v protoc-c >/dev/null 2>&1; then
    mkdir gen && "$TOP/src/models/onnx/regen.sh" "$tmp/gen" >/dev/null 2>&1
    check "src/models/onnx/onnx.pb-c.[ch] are protoc-c's output for onnx.proto" \
        "cmp -s gen/onnx.pb-c.c '$TOP/src/models/onnx/onnx.pb-c.c' && cmp -s gen/onnx.pb-c.h '$TOP/src/models/onnx/onnx.pb-c.h'"
else
    skip "protoc-c is missing (Debian's protobuf-c-compiler): the generated code not compared"
fi

echo "1..$n"
[ $fail -eq 0 ]
