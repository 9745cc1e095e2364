"""The analysis tools (analysis/dnal-report, dnal-sweep, dnal-watch) on logs
of short real runs of $DNAL. Run by tests/analysis/test_analysis.sh (TAP)
or directly: DNAL=build/dnal /usr/bin/python3 -m pytest tests/analysis.

Expected values are read from the logs with h5py here, not through
analysis/dnal_log.py, so the tools are checked against the log itself."""
import csv
import importlib.machinery
import importlib.util
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.environ.get("TOP") or os.path.dirname(os.path.dirname(HERE))
ANALYSIS = os.path.join(TOP, "analysis")
DNAL = os.environ.get("DNAL") or os.path.join(TOP, "build", "dnal")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SHORT = ["--set", "data.train_limit=512", "--set", "data.eval_limit=128", "--set", "data.batch=64",
         "--set", "pretrain.epochs=1", "--set", "search.epochs=1", "--set", "finetune.epochs=1",
         "--set", "log.every=2", "--set", "log.gate_every=2"]
ENV = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"),
           PYTHONDONTWRITEBYTECODE="1")


def dnal_args(folder, name, *settings):
    args = [DNAL, "search"] + SHORT + ["--set", "log.path=" + os.path.join(folder, name + ".h5"),
                                       "--set", "checkpoint.dir=" + os.path.join(folder, name)]
    for s in settings:
        args += ["--set", s]
    return args


def tool(name, *args, **kw):
    return subprocess.run([sys.executable, os.path.join(ANALYSIS, name)] + [str(a) for a in args],
                          capture_output=True, text=True, env=ENV, timeout=120, **kw)


@pytest.fixture(scope="session")
def logs(tmp_path_factory):
    """Logs of short real runs: two lambdas (one of them with two seeds), a
    FLOPs target, one stopped before pruning (search only) and a
    pretrain-only `dnal train`."""
    if not os.access(DNAL, os.X_OK):
        pytest.fail("no dnal binary at %s: set DNAL" % DNAL)
    folder = str(tmp_path_factory.mktemp("logs"))
    runs = {"lambda0.005": ["search.lambda=0.005"], "lambda0.03": ["search.lambda=0.03"],
            "lambda0.03-seed2": ["search.lambda=0.03", "run.seed=2"],
            "target0.5": ["search.flops_target=0.5"],
            "unpruned": ["run.stages=pretrain,search"]}
    out = {}
    for name, settings in runs.items():
        r = subprocess.run(dnal_args(folder, name, *settings), capture_output=True, text=True,
                           env=ENV, timeout=300)
        assert r.returncode == 0, r.stderr
        out[name] = os.path.join(folder, name + ".h5")
    train = os.path.join(folder, "train.h5")
    r = subprocess.run([DNAL, "train"] + SHORT[:6] + ["--set", "pretrain.epochs=1", "--set",
                       "log.path=" + train, "--set", "checkpoint.dir=" + folder + "/train"],
                       capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr
    out["train"] = train
    return out


# ---- reading the truth from the log, independently of the tools
def stage_rows(f, group, stage):
    return np.flatnonzero(f[group + "/stage"][:] == stage)


def last_eval(f, stage, col):
    rows = stage_rows(f, "eval", stage)
    return float(f["eval/" + col][rows[-1]]) if rows.size else math.nan


def expected_numbers(path):
    with h5py.File(path, "r") as f:
        fd, pd = float(f.attrs["flops_dense"]), float(f.attrs["params_dense"])
        fa, pa = float(f["arch"].attrs["flops_after"]), float(f["arch"].attrs["params_after"])
        faa = float(f["arch"].attrs["flops_after_authors"])
        paa = float(f["arch"].attrs["params_after_authors"])
        search = stage_rows(f, "steps", 1)
        beta = f["gates/beta"][:]
        layers = list(f["arch"])
        g = np.concatenate([0.5 + 0.5 * np.tanh(0.5 * beta[:, None] * f["gates/%s/alpha" % l][:]
                                                  .astype(np.float64)) for l in layers], axis=1)
        gap = np.minimum(g, 1 - g)[-1] if len(beta) else np.array([math.nan])
        return {
            "flops_dense": fd, "params_dense": pd, "flops_compact": fa, "params_compact": pa,
            "flops_fraction": fa / fd, "params_fraction": pa / pd,
            "flops_reduction_pct": 100 * (1 - fa / fd), "params_reduction_pct": 100 * (1 - pa / pd),
            "flops_compact_authors": faa, "params_compact_authors": paa,
            "flops_fraction_authors": faa / fd, "params_fraction_authors": paa / pd,
            "top1_pretrain": last_eval(f, 0, "top1"), "top1_search": last_eval(f, 1, "top1"),
            "top1_pruned": last_eval(f, 3, "top1"), "top1_final": last_eval(f, 2, "top1"),
            "top5_search": last_eval(f, 1, "top5"), "top5_final": last_eval(f, 2, "top5"),
            "final_beta": f["steps/beta"][search[-1]] if search.size else math.nan,
            "final_lambda": f["steps/lambda"][search[-1]] if search.size else math.nan,
            "gap_mean": gap.mean(), "gap_max": gap.max(),
            "gap_step": float(f["gates/step"][-1]) if len(beta) else math.nan,
        }


def agrees(printed, value):
    """printed equals value within the precision it was printed with."""
    if printed == "n/a":
        return not math.isfinite(value)
    m = re.fullmatch(r"-?\d+(?:\.(\d+))?(?:e([-+]\d+))?", printed)
    assert m, "unparsable number %r" % printed
    decimals = len(m.group(1) or "")
    exponent = int(m.group(2) or 0)
    return abs(float(printed) - value) <= 0.5 * 10.0 ** (exponent - decimals) * (1 + 1e-9)


def markdown_numbers(md):
    return dict(re.findall(r"^\| [^|]+ \| `(\w+)` \| (\S+) \|$", md, re.M))


def assert_png(path):
    assert os.path.getsize(path) > 1000, path
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE, path


def report(path, outdir):
    r = tool("dnal-report", path, "-o", outdir)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(outdir, "report.md")) as f:
        return f.read()


# ---- dnal-report
FIGURES = ("gates.png", "gap.png", "kept.png", "curves.png")


@pytest.mark.parametrize("run", ["lambda0.005", "unpruned", "train"])
def test_report_writes_every_figure(logs, tmp_path, run):
    md = report(logs[run], tmp_path)
    for name in FIGURES:
        assert_png(tmp_path / name)
        assert "](%s)" % name in md


@pytest.mark.parametrize("run", ["lambda0.005", "target0.5", "unpruned"])
def test_report_numbers_equal_the_log(logs, tmp_path, run):
    printed = markdown_numbers(report(logs[run], tmp_path))
    expected = expected_numbers(logs[run])
    assert set(expected) <= set(printed)
    wrong = {k: (printed[k], expected[k]) for k in expected if not agrees(printed[k], expected[k])}
    assert not wrong


def test_report_kept_channels_and_evaluations_equal_the_log(logs, tmp_path):
    md = report(logs["lambda0.03"], tmp_path)
    table = {m[0]: (int(m[1]), int(m[2])) for m in
             re.findall(r"^\| ([\w.]+) \| (\d+) \| (\d+) \| [\d.]+ \|$", md, re.M)}
    evals = re.findall(r"^\| (\w+) \| ([\d.]+) \| (\d+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$",
                       md, re.M)
    names = {0: "pretrain", 1: "search", 2: "finetune", 3: "prune"}
    with h5py.File(logs["lambda0.03"], "r") as f:
        masks = {l: f["arch/%s/mask" % l][:] for l in f["arch"]}
        assert len(evals) == len(f["eval/stage"])
        for row, stage, top1, top5, loss in zip(evals, f["eval/stage"][:], f["eval/top1"][:],
                                                f["eval/top5"][:], f["eval/loss"][:]):
            assert row[0] == names[stage]
            assert all(agrees(p, v) for p, v in zip(row[3:], (top1, top5, loss)))
    for layer, mask in masks.items():
        assert table[layer] == (mask.size, int(mask.sum()))
    total = sum(m.size for m in masks.values()), sum(int(m.sum()) for m in masks.values())
    assert table["all"] == total


def test_report_before_pruning_says_so(logs, tmp_path):
    md = report(logs["unpruned"], tmp_path)
    assert "not pruned yet" in md
    assert re.search(r"^\| layer1\.0\.gate1 \| 16 \| \d+\? \|", md, re.M)


def test_report_many_layers_and_nan_rows(logs, tmp_path):
    """60 gated layers spread over pages; NaN losses and a NaN eval survive."""
    path = tmp_path / "many.h5"
    shutil.copy(logs["lambda0.005"], path)
    with h5py.File(path, "r+") as f:
        alpha = f["gates/layer3.0.gate1/alpha"][:]
        for i in range(42):
            f["gates/extra%02d/alpha" % i] = alpha
            f["arch/extra%02d/mask" % i] = f["arch/layer3.0.gate1/mask"][:]
        f["steps/loss"][2:5] = np.nan
        f["eval/top5"][0] = np.nan
    md = report(path, tmp_path / "out")
    for name in FIGURES + ("gates-2.png", "gates-3.png"):
        assert_png(tmp_path / "out" / name)
    assert "| extra41 | 64 |" in md


# ---- dnal-sweep
def test_sweep_table_equals_the_logs(logs, tmp_path):
    runs = [logs[k] for k in ("lambda0.03", "lambda0.005", "target0.5", "unpruned")]
    r = tool("dnal-sweep", *runs, "-o", tmp_path)
    assert r.returncode == 0, r.stderr
    assert_png(tmp_path / "pareto.png")
    with open(tmp_path / "sweep.csv") as f:
        rows = {row["run"]: row for row in csv.DictReader(f)}
    assert set(rows) == set(runs)
    for path in runs:
        expected = expected_numbers(path)
        for key, value in expected.items():
            if key in rows[path] and not key.startswith("gap"):
                got = float(rows[path][key])
                assert got == value or (math.isnan(got) and math.isnan(value)), (path, key)
    assert rows[logs["target0.5"]]["flops_target"] == "0.5"
    assert rows[logs["lambda0.03"]]["lambda"] == "0.03"
    assert rows[logs["unpruned"]]["flops_compact"] == "nan"
    md = (tmp_path / "sweep.md").read_text()
    # lambda runs first, by lambda, then targets
    order = [md.index(os.path.basename(logs[k]))
             for k in ("lambda0.005", "lambda0.03", "target0.5")]
    assert order == sorted(order)
    line = next(l for l in md.splitlines() if "lambda0.005.h5" in l)
    cells = [c.strip() for c in line.strip("|").split("|")]
    e = expected_numbers(logs["lambda0.005"])
    assert cells[2] == "%.3fM" % (e["flops_compact"] / 1e6)
    assert cells[4] == "%.3fM" % (e["flops_compact_authors"] / 1e6)
    assert agrees(cells[3], e["flops_reduction_pct"]) and agrees(cells[9], e["top1_final"])
    assert agrees(cells[7], e["top1_search"]) and agrees(cells[10], e["top5_final"])
    assert agrees(cells[11], e["gap_max"])
    assert rows[logs["lambda0.005"]]["seed"] == "1"


def test_sweep_groups_seeds_with_mean_and_std(logs, tmp_path):
    """Runs differing only in run.seed (and in paths) form one row of
    seeds.md / seeds.csv: mean and sample std over them; other settings
    stay apart."""
    runs = [logs[k] for k in ("lambda0.03", "lambda0.03-seed2", "lambda0.005", "target0.5")]
    r = tool("dnal-sweep", *runs, "-o", tmp_path)
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "seeds.csv") as f:
        groups = list(csv.DictReader(f))
    assert len(groups) == 3
    pair = next(g for g in groups if g["lambda"] == "0.03")
    assert pair["seeds"] == "1,2" and pair["n"] == "2" and pair["finished"] == "2"
    for key in ("top1_final", "flops_fraction", "flops_fraction_authors", "top1_pruned"):
        v = [expected_numbers(logs[k])[key] for k in ("lambda0.03", "lambda0.03-seed2")]
        assert float(pair[key + "_mean"]) == pytest.approx(np.mean(v), rel=1e-12, abs=1e-15)
        assert float(pair[key + "_std"]) == pytest.approx(np.std(v, ddof=1), rel=1e-9, abs=1e-15)
    gaps = [expected_numbers(logs[k])["gap_max"] for k in ("lambda0.03", "lambda0.03-seed2")]
    assert float(pair["gap_max"]) == pytest.approx(max(gaps), rel=1e-6, abs=1e-12)
    single = next(g for g in groups if g["lambda"] == "0.005")
    assert single["n"] == "1" and single["top1_final_std"] == "nan"
    md = (tmp_path / "seeds.md").read_text()
    line = next(l for l in md.splitlines() if l.startswith("| resnet20 | lambda 0.03 |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    mean, std = (float(x) for x in cells[9].split(" ± "))
    assert agrees(cells[9].split(" ± ")[0], float(pair["top1_final_mean"]))
    assert agrees(cells[9].split(" ± ")[1], float(pair["top1_final_std"]))
    assert cells[3] == "1,2" and cells[12] == "2 of 2"
    assert "## Over seeds" in (tmp_path / "sweep.md").read_text()


def test_sweep_groups_by_settings_not_paths():
    """group_runs on constructed rows: seed, threads, paths and logging do
    not split a group; any other key does, and is named in `differs`."""
    module = load_sweep_module()
    nan = float("nan")

    def row(seed, top1, extra=None):
        settings = {("model", "name"): "resnet20", ("search", "lambda"): "0.012",
                    ("search", "regularizer"): "flops", ("log", "path"): "x%d.h5" % seed}
        settings.update(extra or {})
        r = {k: nan for k in module.SEED_METRICS}
        r.update(settings=settings, model="resnet20", dataset="fashion-mnist", seed=str(seed),
                 status="finished", gap_max=1e-3 * seed, flops_target=0.0, top1_final=top1)
        r["lambda"] = 0.012
        return r
    rows = [row(1, 0.80), row(2, 0.82), row(3, 0.84),
            row(1, 0.70, {("search", "regularizer"): "count"}),
            row(2, 0.74, {("search", "regularizer"): "count"})]
    for r in rows:  # what the tool leaves out of the settings
        r["settings"] = {k: v for k, v in r["settings"].items() if k != ("log", "path")}
    groups = module.group_runs(rows)
    assert [g["n"] for g in groups] == [3, 2] or [g["n"] for g in groups] == [2, 3]
    three = next(g for g in groups if g["n"] == 3)
    two = next(g for g in groups if g["n"] == 2)
    assert three["top1_final_mean"] == pytest.approx(0.82)
    assert three["top1_final_std"] == pytest.approx(0.02)
    assert three["gap_max"] == pytest.approx(3e-3) and three["seeds"] == "1,2,3"
    assert two["differs"] == "search.regularizer=count" and three["differs"] == ""
    assert two["top1_final_mean"] == pytest.approx(0.72)


def test_sweep_leaves_out_a_bad_log_and_exits_2(logs, tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("not a log\n")
    r = tool("dnal-sweep", logs["lambda0.03"], bad, tmp_path / "gone.h5", "-o", tmp_path / "o")
    assert r.returncode == 2
    assert "notes.txt" in r.stderr and "gone.h5" in r.stderr
    assert "lambda0.03.h5" in (tmp_path / "o" / "sweep.csv").read_text()


def load_sweep_module():
    loader = importlib.machinery.SourceFileLoader("dnal_sweep", os.path.join(ANALYSIS, "dnal-sweep"))
    spec = importlib.util.spec_from_loader("dnal_sweep", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_pareto_front_of_constructed_points():
    front = load_sweep_module().pareto_front
    flops = [50, 30, 40, 30, 60, 20, float("nan"), 45, 40]
    top1 = [0.90, 0.85, 0.80, 0.86, 0.89, 0.70, 0.99, 0.90, 0.88]
    # 20/0.70, 30/0.86 (beats 30/0.85), 40/0.88 (beats 40/0.80), 45/0.90
    # (50/0.90 ties on top-1 with more FLOPs; 60/0.89 dominated; NaN never)
    assert front(flops, top1) == [5, 3, 8, 7]
    assert front([], []) == []
    assert front([1, 1], [0.5, 0.5]) == [0]


# ---- not a dnal log, or one lacking a dataset: exit 2 naming it
TOOLS = [("dnal-report", ["-o"]), ("dnal-sweep", ["-o"]), ("dnal-watch", ["--timeout", "5"])]


def run_tool(name, extra, path, tmp_path):
    args = [path]
    if extra == ["-o"]:
        args += ["-o", tmp_path / "o"]
    else:
        args += extra + ["--interval", "0.2"]
    return tool(name, *args)


@pytest.mark.parametrize("name,extra", TOOLS)
def test_not_a_dnal_log_exits_2(tmp_path, name, extra):
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.arange(3)
    r = run_tool(name, extra, plain, tmp_path)
    assert r.returncode == 2 and "dnal_version" in r.stderr and "plain.h5" in r.stderr
    text = tmp_path / "text.h5"
    text.write_text("hello\n")
    r = run_tool(name, extra, text, tmp_path)
    assert r.returncode == 2 and "not an HDF5 file" in r.stderr


@pytest.mark.parametrize("name,extra", TOOLS)
@pytest.mark.parametrize("missing", ["eval/top5", "steps/beta", "gates/layer2.1.gate2/alpha"])
def test_log_missing_a_dataset_exits_2(logs, tmp_path, name, extra, missing):
    path = tmp_path / "broken.h5"
    shutil.copy(logs["lambda0.03"], path)
    with h5py.File(path, "r+") as f:
        del f[missing]
    r = run_tool(name, extra, path, tmp_path)
    assert r.returncode == 2 and "/" + missing in r.stderr


# ---- dnal-watch
def test_watch_follows_a_run_to_its_end(tmp_path):
    path = tmp_path / "live.h5"
    # started first: it waits for the file, then follows the run
    watch = subprocess.Popen([sys.executable, os.path.join(ANALYSIS, "dnal-watch"), str(path), "--interval",
                              "0.3", "--timeout", "120"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=ENV)
    run = subprocess.run(dnal_args(str(tmp_path), "live"), capture_output=True, text=True,
                         env=ENV, timeout=300)
    assert run.returncode == 0, run.stderr
    out, err = watch.communicate(timeout=60)
    assert watch.returncode == 0, err
    lines = out.splitlines()
    assert "waiting for the file to appear" in lines[0]
    with h5py.File(path, "r") as f:
        steps = list(f["steps/step"][:])
        n_evals = len(f["eval/stage"])
        finished = f.attrs["finished"].decode()
        top1 = last_eval(f, 2, "top1")
    printed = [int(m) for m in re.findall(r"^\w+ +step (\d+)", out, re.M)]
    assert printed == steps    # every row once, in order
    assert len(re.findall(r"^eval ", out, re.M)) == n_evals
    assert any(l.startswith("pruned ") for l in lines)
    assert lines[-1].startswith("finished " + finished)
    assert lines[-1].endswith("final %.4f" % top1)


def test_watch_gives_up_on_a_stale_unfinished_log(logs, tmp_path):
    path = tmp_path / "stopped.h5"
    shutil.copy(logs["lambda0.03"], path)
    with h5py.File(path, "r+") as f:
        del f.attrs["finished"]    # as a killed run leaves it
    r = tool("dnal-watch", path, "--interval", "0.2", "--timeout", "1.5")
    assert r.returncode == 1 and "no change" in r.stderr
    assert "eval     finetune" in r.stdout and "finished" not in r.stdout


def test_watch_a_missing_file_waits_until_the_timeout(tmp_path):
    r = tool("dnal-watch", tmp_path / "queued.h5", "--interval", "0.2", "--timeout", "1")
    assert r.returncode == 1 and "waiting for the file" in r.stdout


def test_watch_a_finished_log_prints_the_summary_at_once(logs):
    r = tool("dnal-watch", logs["target0.5"], "--history", "3")
    assert r.returncode == 0
    assert len(re.findall(r"^\w+ +step ", r.stdout, re.M)) == 3
    assert r.stdout.splitlines()[-1].startswith("finished ")


def test_watch_stops_quietly_on_ctrl_c(tmp_path):
    # Ctrl-C as a terminal sends it: SIGINT at its default disposition (a
    # shell starting the suite in the background would have it ignored),
    # once dnal-watch is past its start-up and waiting
    watch = subprocess.Popen([sys.executable, os.path.join(ANALYSIS, "dnal-watch"), str(tmp_path / "none.h5"),
                              "--interval", "0.2"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=ENV,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    first = watch.stdout.readline()
    watch.send_signal(signal.SIGINT)
    out, err = watch.communicate(timeout=10)
    out = first + out
    assert watch.returncode == 0 and err == ""
