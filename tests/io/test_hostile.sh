#!/bin/sh
# Hostile inputs: every reader checks what it reads before it uses it. Each
# case makes its bad file here and expects the documented ending (2 for bad
# data, 0 where a bad file is skipped and counted), never a signal, a hang
# or an allocation larger than the input justifies:
#   checkpoints whose attributes are arrays, of the wrong class, or out of
#   range (a negative position inside the stage, unknown stages, NaN);
#   Fashion-MNIST test images of another size than the training images;
#   a shard record whose offset is near 2^64, a shard header whose parts
#   do not fit the file, train and val shards with other class names;
#   a FIFO named .JPEG in a class folder (skipped, never opened);
#   a progressive JPEG whose header claims 65500x65500 (skipped before
#   decoding; data.max_pixels bounds it);
#   a checkpoint claiming a large input (export builds no activations) or
#   a width its masks do not have (nothing is built), and model files with
#   damaged attributes (width too), masks, weights or layers.
# Speaks TAP. $DNAL is the binary under test.
DNAL=${DNAL:-./dnal}
PY=/usr/bin/python3
. "$(dirname "$0")/../tap.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
# a process that hangs is a failure: at most $1 seconds
limit() { t=$1; shift; timeout -s KILL "$t" "$@"; }
tiny="--set data.train_limit=128 --set data.eval_limit=64 --set data.batch=64
      --set pretrain.epochs=1 --set search.epochs=1 --set finetune.epochs=1 --set model.name=convnet"

# ---- checkpoints
"$DNAL" train $tiny --set log.path=good.h5 --set checkpoint.dir=good --set checkpoint.every=1 \
    >good.out 2>&1
check "a tiny run writes step checkpoints to tamper with" "[ -f good/step-00000001.h5 ]"
# tamper NAME 'python statements on f (an h5py.File opened r+)'
tamper() {
    cp good/step-00000001.h5 "$1.h5"
    $PY - "$1.h5" "$2" <<'EOF'
import h5py, numpy as np, sys
with h5py.File(sys.argv[1], "r+") as f:
    exec(sys.argv[2])
EOF
}
resume_fails() { # NAME PATTERN: --resume NAME.h5 exits 2 with PATTERN on stderr
    limit 60 "$DNAL" train --resume "$1.h5" >"$1.out" 2>"$1.err"
    rc=$?
    [ $rc -eq 2 ] && grep -q "$2" "$1.err"
}
tamper arr 'del f.attrs["step"]; f.attrs["step"] = np.arange(1000.0)'
check "an array where the scalar step belongs: exit 2 naming it" \
    "resume_fails arr 'arr.h5: attribute step is not a single value'"
tamper arrs 'del f.attrs["model"]; f.attrs["model"] = np.array([b"convnet"] * 100)'
check "an array of strings where the model name belongs: exit 2" \
    "resume_fails arrs 'attribute model is not a single value'"
tamper cls 'del f.attrs["image_size"]; f.attrs["image_size"] = "28"'
check "a string where a number belongs: exit 2" "resume_fails cls 'attribute image_size is not a number'"
tamper neg 'f.attrs["stage_step"] = -5.0'
check "a negative position inside the stage: exit 2" \
    "resume_fails neg 'attribute stage_step = -5 is not a whole number'"
tamper nan 'f.attrs["beta"] = float("nan")'
check "beta NaN: exit 2" "resume_fails nan 'attribute beta = nan'"
tamper done 'del f.attrs["done"]; f.attrs["done"] = np.bytes_(b"pretrain,pretrain")'
check "stages done twice: exit 2" "resume_fails done 'attribute done'"
tamper since 'f.attrs["log_since"] = 1e9'
check "log_since beyond the stage's position: exit 2" "resume_fails since 'attribute log_since'"
tamper mask 'f["/dense/mask"][0] = 0.5'
check "a mask value other than 0 or 1: exit 2" "resume_fails mask '/dense/mask\\[0\\] = 0.5 is not 0 or 1'"
tamper huge 'f.attrs["n_param"] = 1e300'
check "n_param far out of range: exit 2" "resume_fails huge 'attribute n_param'"
tamper classes 'f.attrs["classes"] = 6844524.0'
check "6.8 million classes in a small file (found by fuzzing): exit 2 before anything is built" \
    "/usr/bin/time -f 'maxrss_kb=%M' -o classes.rss \"$DNAL\" export classes.h5 -o classes-model.h5 >classes.out 2>classes.err; \
     [ \$? -eq 2 ] && grep -q 'cannot fit' classes.err && [ \$(sed -n 's/^maxrss_kb=//p' classes.rss) -lt 1000000 ]"
check "... and --resume of it too" "resume_fails classes 'classes.h5: checkpoint of convnet'"
tamper side 'f.attrs["image_size"] = 24369.0'
check "images of 24369x24369 (found by fuzzing): exit 2 before a network is built for them" \
    "\"$DNAL\" export side.h5 -o side-model.h5 >side.out 2>side.err; [ \$? -eq 2 ] && grep -q 'attribute image_size = 24369' side.err"
tamper wide 'f.attrs["width"] = 63.0'
check "width 63 for a width-1 network (found by fuzzing): dnal export exits 2 before building it (small RSS)" \
    "/usr/bin/time -f 'maxrss_kb=%M' -o wide.rss \"$DNAL\" export wide.h5 -o wide-model.h5 >wide.out 2>wide.err; \
     [ \$? -eq 2 ] && grep -q '/dense/mask holds .* gated channels' wide.err && [ \$(sed -n 's/^maxrss_kb=//p' wide.rss) -lt 1000000 ]"
tamper side4k 'f.attrs["image_size"] = 4096.0'
check "a small checkpoint claiming 4096x4096 images: dnal export builds no activations for them" \
    "/usr/bin/time -f 'maxrss_kb=%M' -o side4k.rss \"$DNAL\" export side4k.h5 -o side4k-model.h5 \
         >side4k.out 2>side4k.err && [ \$(sed -n 's/^maxrss_kb=//p' side4k.rss) -lt 1000000 ]"
check "... and dnal eval of its model file compares it with the data first (exit 1, small RSS)" \
    "/usr/bin/time -f 'maxrss_kb=%M' -o eval4k.rss \"$DNAL\" eval side4k-model.h5 --set data.eval_limit=64 \
         >eval4k.out 2>eval4k.err; [ \$? -eq 1 ] && grep -q 'takes 1x4096x4096' eval4k.err &&
     [ \$(sed -n 's/^maxrss_kb=//p' eval4k.rss) -lt 1000000 ]"

# ---- model files: validated whole before a network that runs is built
"$DNAL" train $tiny --set model.name=resnet20 --set model.width=0.25 --set log.path=r20.h5 \
    --set checkpoint.dir=r20 >r20.out 2>&1 && "$DNAL" export r20/pretrain.h5 -o model.h5 >model.out 2>&1
check "a model file with batch norms to tamper with" "[ -f model.h5 ]"
# mtamper NAME 'python statements on f (model.h5 copied, opened r+)'
mtamper() {
    cp model.h5 "$1.h5"
    $PY - "$1.h5" "$2" <<'EOF2'
import h5py, numpy as np, sys
with h5py.File(sys.argv[1], "r+") as f:
    L = f["layers"]
    bn = [k for k in L if "running_var" in L[k]][0]
    conv = [k for k in L if "weight" in L[k] and L[k]["weight"].ndim == 4][0]
    exec(sys.argv[2])
EOF2
}
eval_fails() { # NAME PATTERN: dnal eval NAME.h5 exits 2 with PATTERN on stderr
    limit 60 "$DNAL" eval "$1.h5" --set data.eval_limit=64 >"$1.out" 2>"$1.err"
    rc=$?
    [ $rc -eq 2 ] && grep -q "$2" "$1.err"
}
check "the untouched model file evaluates (exit 0)" \
    "limit 60 \"$DNAL\" eval model.h5 --set data.eval_limit=64 >meval.out 2>&1"
mtamper mver 'f.attrs["version"] = 99.0'
check "a model file of a later format version: exit 2" "eval_fails mver 'attribute version = 99'"
mtamper mflops 'f.attrs["flops_dense"] = f.attrs["flops_dense"] * 2'
check "dense FLOPs that are not the described network's: exit 2" \
    "eval_fails mflops 'attribute flops_dense = .* the network the file describes'"
mtamper mcflops 'f.attrs["flops"] = f.attrs["flops"] + 1000'
check "compact FLOPs that are not the masks' network's: exit 2" "eval_fails mcflops 'attribute flops = '"
mtamper mmask 'k = list(f["arch"])[0]; f["arch"][k]["mask"][0] = 2'
check "a mask value of 2: exit 2" "eval_fails mmask 'mask\\[0\\] = 2 is not 0 or 1'"
mtamper mnan 'L[conv]["weight"][0, 0, 0, 0] = np.nan'
check "a NaN weight: exit 2 naming it" "eval_fails mnan 'weight\\[0\\] = nan is not finite'"
mtamper mvar 'L[bn]["running_var"][0] = -1.0'
check "a negative running variance: exit 2" "eval_fails mvar 'running_var\\[0\\] = -1 is not a variance'"
mtamper mch 'L[conv].attrs["out_channels"] = L[conv].attrs["out_channels"] + 1'
check "a layer's channel count other than its masks make: exit 2" "eval_fails mch 'channels, its masks make'"
mtamper mwide 'f.attrs["width"] = 63.0'
check "width 63 in a model file: exit 2 from the masks' sizes, before a network is built (small RSS)" \
    "/usr/bin/time -f 'maxrss_kb=%M' -o mwide.rss \"$DNAL\" eval mwide.h5 --set data.eval_limit=64 >mwide.out 2>mwide.err; \
     [ \$? -eq 2 ] && grep -q 'mask holds .* channels there' mwide.err && [ \$(sed -n 's/^maxrss_kb=//p' mwide.rss) -lt 1000000 ]"
mtamper mgone 'del f["layers"][conv]'
check "a missing layer: exit 2 naming it" "eval_fails mgone 'missing group /layers/'"

check "the untouched checkpoint still resumes (exit 0)" \
    "limit 120 \"$DNAL\" train --resume good/step-00000001.h5 >ok.out 2>&1"

# ---- Fashion-MNIST: test images of another size than the training images
$PY - <<'EOF'
import gzip, struct, os
os.makedirs("fm", exist_ok=True)
def idx(name, magic, dims, data):
    with gzip.open("fm/" + name, "wb") as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + data)
idx("train-images-idx3-ubyte.gz", 0x803, (128, 28, 28), bytes(128 * 28 * 28))
idx("train-labels-idx1-ubyte.gz", 0x801, (128,), bytes(i % 10 for i in range(128)))
idx("t10k-images-idx3-ubyte.gz", 0x803, (64, 40, 40), bytes(64 * 40 * 40))
idx("t10k-labels-idx1-ubyte.gz", 0x801, (64,), bytes(i % 10 for i in range(64)))
EOF
limit 60 "$DNAL" train $tiny --set data.path=fm --set log.path=fm.h5 --set checkpoint.dir=fmck \
    >fm.out 2>fm.err
rc=$?
check "Fashion-MNIST test images 40x40, train 28x28: exit 2 before training ($(head -c 200 fm.err))" \
    "[ $rc -eq 2 ] && grep -q 'test split holds 1x40x40 images' fm.err && ! grep -q '^stage=' fm.out"

# ---- ImageNet folders and shards
$PY - <<'EOF'
import os, random
from PIL import Image
random.seed(1)
for split, n in (("train", 3), ("val", 1)):
    for c in ("n01", "n02"):
        os.makedirs(f"tree/{split}/{c}", exist_ok=True)
        for i in range(n):
            im = Image.new("RGB", (48 + 8 * i, 40), tuple(random.randrange(256) for _ in range(3)))
            im.save(f"tree/{split}/{c}/img_{i}.JPEG", quality=90)
# a small progressive JPEG whose frame header claims 65500 x 65500
im = Image.new("RGB", (64, 64), (10, 200, 30))
im.save("bomb.jpg", progressive=True, quality=90)
b = bytearray(open("bomb.jpg", "rb").read())
sof = b.index(b"\xff\xc2")
b[sof + 5:sof + 9] = (65500).to_bytes(2, "big") * 2
open("bomb.jpg", "wb").write(b)
EOF
cp -r tree clean
mkfifo tree/train/n01/fifo.JPEG
cp bomb.jpg tree/train/n02/bomb.JPEG
limit 60 /usr/bin/time -f 'maxrss_kb=%M' "$DNAL" prep imagenet tree pshards --size 32 --per-shard 4 \
    >prep.out 2>prep.err
rc=$?
rss=$(sed -n 's/^maxrss_kb=//p' prep.err)
check "dnal prep with a FIFO and a JPEG claiming 65500x65500: exit 0, both skipped and counted ($(grep split=train prep.out))" \
    "[ $rc -eq 0 ] && grep -q 'prep split=train images=6 skipped=2' prep.out"
check "... the FIFO is named, not opened ($(grep fifo prep.err | head -c 120))" \
    "grep -q 'fifo.JPEG: not a regular file' prep.err"
check "... the bomb is refused from its header (${rss:-?} kB resident at most)" \
    "grep -q 'bomb.JPEG: the header declares 65500x65500 pixels' prep.err && [ \"\${rss:-9999999}\" -lt 1000000 ]"
limit 60 "$DNAL" prep imagenet clean small --size 32 --max-pixels 2000 >small.out 2>small.err
check "dnal prep --max-pixels 2000 skips the 56x40 and 64x40 images, keeps the 48x40 ($(grep split=train small.out))" \
    "grep -q 'prep split=train images=2 skipped=4' small.out"
run="train --set model.name=convnet --set data.image_size=32 --set data.batch=2 --set data.workers=0
     --set pretrain.epochs=1 --set log.path=img.h5 --set checkpoint.dir=imgck"
limit 120 "$DNAL" $run --set data.dataset=imagenet --set data.path=tree --set data.batch=7 \
    >folders.out 2>folders.err
rc=$?
check "training from folders with the FIFO and the bomb: exit 0, both skipped ($(grep '^data skipped' folders.out | head -n 1))" \
    "[ $rc -eq 0 ] && grep -q 'fifo.JPEG: not a regular file' folders.err \
     && grep -q 'bomb.JPEG: the header declares' folders.err && grep -q '^data skipped train=2' folders.out"
limit 120 "$DNAL" $run --set data.dataset=imagenet --set data.path=clean --set data.max_pixels=2000 \
    --set checkpoint.dir=maxck \
    >maxpx.out 2>maxpx.err
check "data.max_pixels=2000: the larger images are skipped and counted ($(grep '^data skipped' maxpx.out | head -n 1))" \
    "grep -q '^data skipped train=4' maxpx.out && grep -q 'more than data.max_pixels = 2000' maxpx.err"

limit 60 "$DNAL" prep imagenet clean shards --size 32 --per-shard 4 >cshards.out 2>&1
# shard NAME 'python statements on b (the bytes of NAME/train-00000.dnshard)'
shard() {
    rm -rf "$1"
    cp -r shards "$1"
    $PY - "$1/train-00000.dnshard" "$2" <<'EOF'
import struct, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
count, names_bytes, index_offset, data_offset = struct.unpack_from("<QQQQ", b, 16)
exec(sys.argv[2])
open(p, "wb").write(b)
EOF
}
shard_fails() { # NAME PATTERN
    limit 60 "$DNAL" $run --set data.dataset=imagenet-shards --set data.path="$1" \
        --set checkpoint.dir="$1.ck" >"$1.out" 2>"$1.err"
    rc=$?
    [ $rc -eq 2 ] && grep -q "$2" "$1.err"
}
shard far 'struct.pack_into("<Q", b, index_offset, 2**64 - 100)'
check "a shard record whose offset is near 2^64: exit 2 naming the record" \
    "shard_fails far 'train-00000.dnshard: record 0 (offset 18446744073709551516'"
shard cnt 'struct.pack_into("<Q", b, 16, 2**40)'
check "a header counting 2^40 records in a small file: exit 2, nothing allocated for them" \
    "shard_fails cnt 'malformed shard header'"
shard idx 'struct.pack_into("<Q", b, 32, 2**64 - 8)'
check "an index offset near 2^64: exit 2" "shard_fails idx 'malformed shard header'"
rm -rf other && cp -r shards other
$PY - other <<'EOF'
import glob, sys
for p in glob.glob(sys.argv[1] + "/val-*.dnshard"):
    b = open(p, "rb").read().replace(b"n02\0", b"n03\0", 1)
    open(p, "wb").write(b)
EOF
check "val shards carrying other class names than train: exit 2 naming both" \
    "shard_fails other \"class 1 is 'n02' in the train split, 'n03' in the test split\""

# ---- checkpoint folders: a run id in each checkpoint
ck="train $tiny --set checkpoint.every=1"
"$DNAL" $ck --set log.path=A.h5 --set checkpoint.dir=A --set checkpoint.keep=5 >A.out 2>&1
limit 60 "$DNAL" $ck --set log.path=B.h5 --set checkpoint.dir=A >B.out 2>B.err
rc=$?
check "a fresh run into a folder holding another run's checkpoints: exit 1 naming it ($(head -c 160 B.err))" \
    "[ $rc -eq 1 ] && grep -q 'checkpoint.dir A holds checkpoints of another run (A/' B.err && ! grep -q '^stage=' B.out"
"$DNAL" $ck --set log.path=C.h5 --set checkpoint.dir=C --set checkpoint.keep=5 >C.out 2>&1
cp A/step-00000001.h5 C/step-00000090.h5
cp A/step-00000002.h5 C/step-00000091.h5
limit 60 "$DNAL" train --resume C/step-00000001.h5 --set checkpoint.keep=1 >C2.out 2>&1
check "another run's higher step checkpoints in the folder: this run keeps its own newest, removes its older, leaves the other's" \
    "[ -f C/step-00000002.h5 ] && [ ! -f C/step-00000001.h5 ] && [ -f C/step-00000090.h5 ] && [ -f C/step-00000091.h5 ]"
touch -d '2020-01-01' C/step-00000090.h5 C/step-00000091.h5
limit 60 "$DNAL" train --resume C >C3.out 2>C3.err
check "--resume DIR with two runs' checkpoints takes the newest of the run written last and names it ($(grep '^resume' C3.out | cut -d' ' -f2))" \
    "grep -q '^resume from=C/pretrain.h5 ' C3.out && grep -q 'holds checkpoints of 2 runs' C3.err"
check "... and says which run it continues" "grep -q '^run id=.* (resumed)' C3.out"
limit 60 "$DNAL" $ck --set log.path=P.h5 --set checkpoint.dir=/proc/dnal-ck >P.out 2>P.err
rc=$?
check "an unwritable checkpoint.dir: exit 2 before the first step" \
    "[ $rc -eq 2 ] && grep -q 'checkpoint.dir /proc/dnal-ck' P.err && ! grep -q '^stage=' P.out"
limit 60 "$DNAL" $ck --set log.path=/proc/dnal/run.h5 --set checkpoint.dir=Q >Q.out 2>Q.err
rc=$?
check "an unwritable log folder: exit 2 before the first step" \
    "[ $rc -eq 2 ] && grep -q \"log.path's folder /proc/dnal\" Q.err && ! grep -q '^stage=' Q.out"
mkdir full
if mount -t tmpfs -o size=64k tmpfs full 2>/dev/null; then
    limit 60 "$DNAL" $ck --set log.path=F.h5 --set checkpoint.dir=full/ck >F.out 2>F.err
    rc=$?
    umount full
    check "a checkpoint.dir too full for one checkpoint: exit 2 before the first step ($(head -c 150 F.err))" \
        "[ $rc -eq 2 ] && grep -q 'No space left' F.err && ! grep -q '^stage=' F.out"
else
    n=$((n + 1)); echo "ok $n # SKIP cannot mount a small tmpfs here (not root)"
fi

# ---- the stored configuration: a data path of 230 characters
long=$(printf 'd%.0s' $(seq 1 229))
mkdir -p "$long" && cp fm/train-* "$long/" && for f in images-idx3 labels-idx1; do
    $PY -c "import gzip,sys; d=gzip.open('fm/train-$f-ubyte.gz').read(); n=64
hdr=d[:16] if '$f'=='images-idx3' else d[:8]
import struct
if '$f'=='images-idx3': out=struct.pack('>IIII',0x803,n,28,28)+d[16:16+n*784]
else: out=struct.pack('>II',0x801,n)+d[8:8+n]
gzip.open('$long/t10k-$f-ubyte.gz','wb').write(out)"
done
"$DNAL" $ck --set data.path="$long" --set log.path=L.h5 --set checkpoint.dir=L >L.out 2>L.err
limit 120 "$DNAL" train --resume L/step-00000001.h5 >L2.out 2>L2.err
rc=$?
check "a data path of 230 characters: the run trains and --resume reads its configuration back (rc $rc)" \
    "[ $rc -eq 0 ] && grep -q '^resume from=L/step-00000001.h5' L2.out && grep -q \"^path = $long\$\" L2.out"

# ---- durability and the run log on resume
"$DNAL" $ck --set log.path=M.h5 --set checkpoint.dir=M --set checkpoint.keep=5 >M.out 2>&1
printf 'not an HDF5 file at all' >M.h5
limit 120 "$DNAL" train --resume M/step-00000001.h5 >M2.out 2>M2.err
rc=$?
moved=$(ls M.h5.unreadable-* 2>/dev/null | head -n 1)
check "an unreadable run log on resume is moved aside and a new one begun (rc $rc; $(grep '^log note' M2.out | head -c 120))" \
    "[ $rc -eq 0 ] && [ -n \"$moved\" ] && grep -q 'could not be opened' M2.out && \
     $PY -c \"import h5py,sys; f=h5py.File('M.h5','r'); sys.exit(0 if (lambda v: (v.decode() if isinstance(v, bytes) else str(v)).endswith('$moved'))(f.attrs['previous_log_moved_to']) and len(f['/steps/step']) > 0 else 1)\""
if command -v strace >/dev/null 2>&1; then
    strace -f -o trace.txt -e trace=openat,fsync,rename,unlink,unlinkat \
        "$DNAL" $ck --set log.path=S.h5 --set checkpoint.dir=S --set checkpoint.keep=1 >S.out 2>&1
    check "a step checkpoint is fsynced before its rename, its folder after, and only then the older one removed" \
        "awk '/rename\\(\"S\\/step-00000002.h5.tmp\"/ { r = NR } /fsync\\(/ { if (!r) before = NR; else if (!after) after = NR }
              /unlink.*S\\/step-00000001.h5\"/ { u = NR }
              END { exit !(r && before && after > r && u > after) }' trace.txt"
else
    n=$((n + 1)); echo "ok $n # SKIP strace is not installed"
fi

echo "1..$n"
[ "$fail" -eq 0 ]
