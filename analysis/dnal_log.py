"""Reading a dnal run log (docs/design.md, "The run log").

Shared by dnal-report, dnal-sweep and dnal-watch. A log is read whole into
a RunLog (plain numpy arrays) and the file is closed again at once: the
writer appends by open-write-close without HDF5 file locking, so a reader
must never keep the file open between polls, and an open that races an
append may fail or see columns of different lengths; load() retries those.

A file that is not a dnal log, or lacks an attribute or dataset of the
contract, raises NotALog naming what is missing; the tools exit 2 on it.
"""
import configparser
import os
import sys
import time

import h5py
import numpy as np

STAGE_NAMES = {0: "pretrain", 1: "search", 2: "finetune", 3: "prune"}
PRETRAIN, SEARCH, FINETUNE, PRUNE = 0, 1, 2, 3
STEP_COLUMNS = ("step", "epoch", "stage", "loss", "reg", "lambda", "lr", "beta", "flops",
                "params", "images_per_s")
EVAL_COLUMNS = ("epoch", "stage", "top1", "top5", "loss")
ROOT_ATTRS = ("dnal_version", "config", "flops_dense", "params_dense")
ARCH_ATTRS = ("flops_before", "flops_after", "params_before", "params_after")
# the compact network counted the authors' way; logs written before dnal
# reported it lack them (read as NaN)
ARCH_ATTRS_OPTIONAL = ("flops_after_authors", "params_after_authors")
EXIT_NOT_A_LOG = 2


class NotALog(Exception):
    """The file is not a dnal run log; the message names what is missing."""


class Transient(Exception):
    """A read that raced the writer's append; worth retrying."""


def stage_name(code):
    return STAGE_NAMES.get(int(code), "stage%d" % int(code))


def text(value):
    """h5py returns the log's string attributes as bytes."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def sigmoid(x):
    # tanh form: no overflow warning for beta * alpha of +-1e5
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))


def last_finite(values):
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if finite.size else float("nan")


class RunLog:
    """Everything in one log, as numpy arrays; see read_file for the fields."""

    def __init__(self, path):
        self.path = path
        self.attrs = {}
        self.config = configparser.ConfigParser(interpolation=None)
        self.steps = {}
        self.evals = {}
        self.gate_step = np.zeros(0, np.int64)
        self.gate_beta = np.zeros(0)
        self.alpha = {}    # layer -> float32 [snapshots x channels]
        self.masks = {}    # layer -> uint8 [channels]
        self.arch = {}

    # ---- configuration and state
    def setting(self, section, key, default=""):
        return self.config.get(section, key, fallback=default)

    def setting_float(self, section, key, default=float("nan")):
        try:
            return float(self.setting(section, key, ""))
        except ValueError:
            return default

    @property
    def layers(self):
        return list(self.masks)

    @property
    def finished(self):
        return "finished" in self.attrs

    @property
    def pruned(self):
        return bool(np.isfinite(self.arch.get("flops_after", np.nan)))

    @property
    def flops_dense(self):
        return float(self.attrs["flops_dense"])

    @property
    def params_dense(self):
        return float(self.attrs["params_dense"])

    def status(self):
        """finished, or unfinished with the stage and step of the last row."""
        if self.finished:
            return "finished"
        if len(self.steps["step"]) == 0:
            return "unfinished (no steps yet)"
        return "unfinished (%s, step %d)" % (stage_name(self.steps["stage"][-1]),
                                             self.steps["step"][-1])

    # ---- evaluations
    def last_eval(self, stage):
        """The last evaluation row of a stage as a dict, or None."""
        rows = np.flatnonzero(self.evals["stage"] == stage)
        if rows.size == 0:
            return None
        i = rows[-1]
        return {c: float(self.evals[c][i]) for c in EVAL_COLUMNS}

    def eval_value(self, stage, column):
        row = self.last_eval(stage)
        return row[column] if row else float("nan")

    def eval_steps(self):
        """The global step of each evaluation: the last step row of its stage
        and epoch (the run logs a row at every epoch end); the prune
        evaluation sits at the search's last step."""
        steps, out = self.steps, []
        for stage, epoch in zip(self.evals["stage"], self.evals["epoch"]):
            if stage == PRUNE:
                rows = np.flatnonzero(steps["stage"] == SEARCH)
            else:
                rows = np.flatnonzero((steps["stage"] == stage) & (steps["epoch"] <= epoch + 1e-9))
            out.append(steps["step"][rows[-1]] if rows.size else np.nan)
        return np.asarray(out, dtype=np.float64)

    # ---- gates
    def search_end_step(self):
        rows = np.flatnonzero(self.steps["stage"] == SEARCH)
        return int(self.steps["step"][rows[-1]]) if rows.size else None

    def gate_values(self, layer):
        """sigmoid(beta * alpha) * mask per snapshot; the masks apply only to
        snapshots after the search (before pruning every mask is 1)."""
        g = sigmoid(self.gate_beta[:, None] * self.alpha[layer])
        end = self.search_end_step()
        if self.pruned and end is not None:
            after = self.gate_step > end
            g[after] *= self.masks[layer][None, :]
        return g

    def all_gates(self, snapshot=-1):
        """Every gate value of one snapshot, concatenated over layers."""
        if len(self.gate_step) == 0:
            return np.zeros(0)
        return np.concatenate([self.gate_values(l)[snapshot] for l in self.layers])

    def binarisation_gap(self):
        """mean and max over all gates of min(g, 1 - g), one per snapshot."""
        if len(self.gate_step) == 0:
            return np.zeros(0), np.zeros(0)
        g = np.concatenate([self.gate_values(l) for l in self.layers], axis=1)
        gap = np.minimum(g, 1.0 - g)
        return gap.mean(axis=1), gap.max(axis=1)

    def kept_channels(self):
        """layer -> (dense, kept, provisional). Once pruned, kept comes from the
        masks; before that it is the prune rule applied to the last snapshot
        (g > prune.threshold, at least one channel), marked provisional."""
        threshold = self.setting_float("prune", "threshold", 0.9)
        out = {}
        for layer, mask in self.masks.items():
            if self.pruned or len(self.gate_step) == 0:
                out[layer] = (mask.size, int(mask.sum()), not self.pruned)
            else:
                g = self.gate_values(layer)[-1]
                out[layer] = (mask.size, max(1, int((g > threshold).sum())), True)
        return out


def _require(group, names, where, kind):
    for name in names:
        if name not in group:
            raise NotALog("missing %s %s" % (kind, where.rstrip("/") + "/" + name if where else name))


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def looks_like_hdf5(path):
    """The HDF5 signature sits at byte 0, 512, 1024, ... (after a user block).
    An empty file may be one being created: give it the benefit of the doubt."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if not head:
        return True
    return any(head[o:o + 8] == HDF5_SIGNATURE for o in (0, 512, 1024, 2048))


def read_file(path):
    """One attempt: read the whole log and close it. Raises NotALog,
    Transient (retry) or FileNotFoundError."""
    if not os.path.exists(path):
        raise FileNotFoundError(path)
    if not looks_like_hdf5(path):
        raise NotALog("not an HDF5 file: not a dnal run log")
    try:
        f = h5py.File(path, "r", locking=False)
    except OSError as e:
        # an append in progress, or not HDF5 at all: the caller retries and
        # then reports the last error
        raise Transient("cannot open as HDF5 (%s)" % e) from e
    log = RunLog(path)
    try:
        with f:
            for name in ROOT_ATTRS:
                if name not in f.attrs:
                    raise NotALog("missing root attribute %s: not a dnal run log" % name)
            log.attrs = {k: f.attrs[k] for k in f.attrs}
            log.attrs = {k: text(v) if isinstance(v, (bytes, str)) else v
                         for k, v in log.attrs.items()}
            for group in ("steps", "eval", "gates", "arch"):
                if group not in f:
                    raise NotALog("missing group /%s" % group)
            _require(f["steps"], STEP_COLUMNS, "/steps", "dataset")
            _require(f["eval"], EVAL_COLUMNS, "/eval", "dataset")
            _require(f["gates"], ("step", "beta"), "/gates", "dataset")
            for name in ARCH_ATTRS:
                if name not in f["arch"].attrs:
                    raise NotALog("missing attribute /arch %s" % name)
            log.steps = {c: f["steps"][c][()] for c in STEP_COLUMNS}
            log.evals = {c: f["eval"][c][()] for c in EVAL_COLUMNS}
            log.gate_step = f["gates/step"][()]
            log.gate_beta = f["gates/beta"][()].astype(np.float64)
            log.arch = {k: float(f["arch"].attrs[k]) for k in ARCH_ATTRS}
            log.arch.update({k: float(f["arch"].attrs.get(k, np.nan))
                             for k in ARCH_ATTRS_OPTIONAL})
            for layer in f["arch"]:
                if "mask" not in f["arch"][layer]:
                    raise NotALog("missing dataset /arch/%s/mask" % layer)
                log.masks[layer] = f["arch"][layer]["mask"][()]
                if layer not in f["gates"] or "alpha" not in f["gates"][layer]:
                    raise NotALog("missing dataset /gates/%s/alpha" % layer)
                log.alpha[layer] = f["gates"][layer]["alpha"][()]
    except (KeyError, OSError, RuntimeError, ValueError) as e:
        raise Transient("read failed (%s)" % e) from e
    log.config.read_string(log.attrs["config"])
    _check_lengths(log)
    return log


def _check_lengths(log):
    """Columns appended by one write must agree; if not, we raced it."""
    n_steps = {len(v) for v in log.steps.values()}
    n_evals = {len(v) for v in log.evals.values()}
    n_snaps = {len(log.gate_step), len(log.gate_beta)} | {a.shape[0] for a in log.alpha.values()}
    if len(n_steps) > 1 or len(n_evals) > 1 or len(n_snaps) > 1:
        raise Transient("columns of different lengths (an append in progress)")
    for layer, a in log.alpha.items():
        if a.ndim != 2 or a.shape[1] != log.masks[layer].size:
            raise Transient("/gates/%s/alpha does not match its mask" % layer)


def load(path, attempts=5, delay=0.2):
    """read_file with retries on Transient errors; after the last attempt a
    persisting Transient error becomes NotALog (e.g. a file that is not HDF5)."""
    for attempt in range(attempts):
        try:
            return read_file(path)
        except Transient as e:
            last = e
            time.sleep(delay * (attempt + 1))
    raise NotALog(str(last))


def load_or_exit(path, tool):
    """load() for the command-line tools: exit 2 with a message naming what
    is missing."""
    try:
        return load(path)
    except FileNotFoundError:
        fail(tool, path, "no such file")
    except NotALog as e:
        fail(tool, path, str(e))


def fail(tool, path, message):
    sys.stderr.write("%s: %s: %s\n" % (tool, path, message))
    sys.exit(EXIT_NOT_A_LOG)


def summary(log):
    """The numbers report.md and the sweep table state, by name."""
    s = {
        "flops_dense": log.flops_dense,
        "params_dense": log.params_dense,
        "flops_compact": log.arch["flops_after"],
        "params_compact": log.arch["params_after"],
        "flops_compact_authors": log.arch["flops_after_authors"],
        "params_compact_authors": log.arch["params_after_authors"],
    }
    s["flops_fraction"] = s["flops_compact"] / s["flops_dense"]
    s["params_fraction"] = s["params_compact"] / s["params_dense"]
    s["flops_fraction_authors"] = s["flops_compact_authors"] / s["flops_dense"]
    s["params_fraction_authors"] = s["params_compact_authors"] / s["params_dense"]
    s["flops_reduction_pct"] = 100.0 * (1.0 - s["flops_fraction"])
    s["params_reduction_pct"] = 100.0 * (1.0 - s["params_fraction"])
    for key, stage in (("pretrain", PRETRAIN), ("search", SEARCH), ("pruned", PRUNE),
                       ("final", FINETUNE)):
        s["top1_" + key] = log.eval_value(stage, "top1")
        s["top5_" + key] = log.eval_value(stage, "top5")
    search = log.steps["stage"] == SEARCH
    s["final_beta"] = last_finite(log.steps["beta"][search])
    s["final_lambda"] = last_finite(log.steps["lambda"][search])
    s["lambda"] = log.setting_float("search", "lambda")
    s["flops_target"] = log.setting_float("search", "flops_target", 0.0)
    # the gap at the end of the search: its last snapshot (or the last one)
    mean_gap, max_gap = log.binarisation_gap()
    end = log.search_end_step()
    snaps = np.flatnonzero(log.gate_step <= end) if end is not None else np.zeros(0, int)
    i = snaps[-1] if snaps.size else len(log.gate_step) - 1
    s["gap_mean"] = float(mean_gap[i]) if i >= 0 else float("nan")
    s["gap_max"] = float(max_gap[i]) if i >= 0 else float("nan")
    s["gap_step"] = float(log.gate_step[i]) if i >= 0 else float("nan")
    return s
