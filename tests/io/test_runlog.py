#!/usr/bin/python3
"""The HDF5 run log (docs/design.md, "The run log") as an analysis script sees it:
every dataset and attribute with its shape and type, rows that agree with
what the run printed, and a log read while the job runs and after kill -9.
Speaks TAP. $DNAL is the binary under test; needs h5py and numpy
(Debian's python3-h5py), and h5dump (hdf5-tools)."""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

DNAL = os.environ.get("DNAL", "./dnal")
n = 0
failed = 0


def check(name, ok):
    global n, failed
    n += 1
    failed += not ok
    print(("ok" if ok else "not ok") + " %d - %s" % (n, name), flush=True)


def attr_is(f, name, kind):
    v = f.attrs.get(name)
    if kind is str:
        return isinstance(v, (str, bytes))
    return v is not None and np.asarray(v).dtype == kind and np.asarray(v).shape == ()


os.chdir(tempfile.mkdtemp())
small = ["--set", "data.train_limit=1024", "--set", "data.eval_limit=256", "--set", "data.batch=64"]
run = subprocess.run([DNAL, "search"] + small + [
    "--set", "pretrain.epochs=1", "--set", "search.epochs=1", "--set", "finetune.epochs=1",
    "--set", "log.every=4", "--set", "log.gate_every=4", "--set", "log.path=run.h5",
    "--set", "checkpoint.dir=ck"], capture_output=True, text=True)
check("dnal search with a run log exits 0", run.returncode == 0)
out = run.stdout
f = h5py.File("run.h5", "r")

check("root attributes: dnal_version, onednn_version, config, created (strings)",
      all(attr_is(f, a, str) for a in ("dnal_version", "onednn_version", "config", "created")))
check("root attributes: world_size, threads (int64), seed (uint64)",
      attr_is(f, "world_size", np.int64) and attr_is(f, "threads", np.int64)
      and attr_is(f, "seed", np.uint64) and f.attrs["world_size"] == 1 and f.attrs["seed"] == 1)
created = f.attrs["created"]
created = created.decode() if isinstance(created, bytes) else created
check("created is ISO 8601 (%s)" % created,
      re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created) is not None)
config = f.attrs["config"]
config = config.decode() if isinstance(config, bytes) else config
check("config holds the resolved INI", "[search]" in config and "every = 4" in config)

cols = ["step", "epoch", "stage", "loss", "reg", "lambda", "lr", "beta", "flops", "params",
        "images_per_s"]
types = {"step": np.int64, "stage": np.int8}
steps = {c: f["steps"][c] for c in cols}
rows = steps["step"].shape
check("/steps: %d columns, 1-D, one length %s" % (len(cols), rows),
      all(d.ndim == 1 and d.shape == rows for d in steps.values()) and set(f["steps"]) == set(cols))
check("/steps types: step int64, stage int8, the rest float64",
      all(steps[c].dtype == types.get(c, np.float64) for c in cols))
printed = len(re.findall(r"^stage=", out, re.M))
check("one /steps row per progress line (%d)" % printed, rows[0] == printed and printed > 0)
st = steps["step"][()]
check("steps increase; stages 0, 1, 2 in order",
      np.all(np.diff(st) > 0) and list(np.unique(steps["stage"][()])) == [0, 1, 2]
      and np.all(np.diff(steps["stage"][()]) >= 0))
search = steps["stage"][()] == 1
check("beta and lambda logged in the search, NaN elsewhere",
      np.all(np.isfinite(steps["beta"][()][search])) and np.all(np.isnan(steps["beta"][()][~search])))
check("flops: dense in pretrain, expected below dense in search",
      np.all(steps["flops"][()][steps["stage"][()] == 0] == f.attrs["flops_dense"])
      and steps["flops"][()][search][-1] < f.attrs["flops_dense"])

gates = f["gates"]
layers = [k for k in gates if k not in ("step", "beta")]
snaps = gates["step"].shape[0]
check("/gates/step int64 and /gates/beta float64, %d snapshots" % snaps,
      gates["step"].dtype == np.int64 and gates["beta"].dtype == np.float64
      and gates["beta"].shape == (snaps,) and snaps >= 2)
check("/gates/<layer>/alpha float32 [snapshots x channels] for the 18 gated layers",
      len(layers) == 18 and all(gates[k]["alpha"].dtype == np.float32
                                and gates[k]["alpha"].shape[0] == snaps for k in layers))
check("gate snapshots from beta0 to beta_final",
      gates["beta"][0] == 1.0 and gates["beta"][-1] == 1e4)
check("the search's first snapshot is alpha = 0", all(np.all(gates[k]["alpha"][0] == 0) for k in layers))

ev = f["eval"]
ecols = ["epoch", "stage", "top1", "top5", "loss"]
check("/eval: 5 columns, one length, stage int8",
      set(ev) == set(ecols) and len({ev[c].shape for c in ecols}) == 1 and ev["stage"].dtype == np.int8)
printed = re.findall(r"^eval stage=\w+ epoch=\S+ top1=([0-9.]+)", out, re.M)
check("one /eval row per eval line, the same top-1 (%s)" % ",".join(printed),
      [round(x, 4) for x in ev["top1"][()]] == [float(x) for x in printed]
      and list(ev["stage"][()]) == [0, 1, 3, 2])

arch = f["arch"]
kept = {m.group(1): int(m.group(2)) for m in
        re.finditer(r"^(layer\S+)\s+\d+\s+(\d+)\s", out, re.M)}
check("/arch/<layer>/mask uint8, kept channels as the printed table",
      all(arch[k]["mask"].dtype == np.uint8 and int(arch[k]["mask"][()].sum()) == kept.get(k, -1)
          for k in layers) and len(kept) == 18)
summary = dict(re.findall(r"(\w+)=([0-9.]+)", re.search(r"^summary .*$", out, re.M).group(0)))
check("/arch attributes: FLOPs and parameters before and after as the summary",
      arch.attrs["flops_before"] == float(summary["flops_dense"])
      and arch.attrs["flops_after"] == float(summary["flops_compact"])
      and arch.attrs["params_after"] == float(summary["params_compact"]))
check("both FLOPs counts (exact and the authors') in /arch and the root attributes, as the "
      "summary (%s and %s FLOPs)" % (summary["flops_compact"], summary["flops_compact_authors"]),
      arch.attrs["flops_after_authors"] == float(summary["flops_compact_authors"])
      and arch.attrs["params_after_authors"] == float(summary["params_compact_authors"])
      and f.attrs["flops_compact"] == arch.attrs["flops_after"]
      and f.attrs["params_compact"] == arch.attrs["params_after"]
      and f.attrs["flops_compact_authors"] == arch.attrs["flops_after_authors"]
      and f.attrs["params_compact_authors"] == arch.attrs["params_after_authors"]
      and f.attrs["flops_compact_authors"] <= f.attrs["flops_compact"])
check("a completed run is marked: finished (%s)" % f.attrs.get("finished"),
      isinstance(f.attrs.get("finished"), (str, bytes)))
f.close()
dump = subprocess.run(["h5dump", "-H", "run.h5"], capture_output=True, text=True)
check("h5dump reads the log", dump.returncode == 0 and "/steps" not in dump.stderr)

# while running and after kill -9
job = subprocess.Popen([DNAL, "train", "--set", "data.train_limit=8192", "--set", "data.batch=64",
                        "--set", "pretrain.epochs=4", "--set", "log.every=2",
                        "--set", "log.path=live.h5", "--set", "checkpoint.dir=ck2"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
live = 0
deadline = time.time() + 120
while time.time() < deadline and live < 10:
    time.sleep(0.5)
    try:
        with h5py.File("live.h5", "r") as g:
            live = g["steps/step"].shape[0]
    except (OSError, KeyError):
        pass
dump = subprocess.run(["h5dump", "-d", "/steps/step", "live.h5"], capture_output=True, text=True)
check("h5py and h5dump read the log while the job runs (%d rows)" % live,
      live >= 10 and dump.returncode == 0)
job.send_signal(signal.SIGKILL)
job.wait()
with h5py.File("live.h5", "r") as g:
    after = g["steps/step"][()]
    killed_finished = "finished" in g.attrs
check("after kill -9 the log opens and holds every row appended (%d, steps %s...)"
      % (after.size, after[:3]),
      after.size >= live and np.all(after == 2 * np.arange(1, after.size + 1)))
check("a killed run is not marked finished", not killed_finished)

print("1..%d" % n)
sys.exit(1 if failed else 0)
