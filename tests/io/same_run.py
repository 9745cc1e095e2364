#!/usr/bin/python3
"""Prints "same" if two runs' checkpoints (search.h5, finetune.h5: parameters,
BN statistics, masks, alpha) and run logs (every dataset but images/s) agree
bitwise, else "differ:" and the first names that differ.

    same_run.py RUN_A RUN_B    (RUN: the checkpoint folder; RUN.h5: its log)
"""
import h5py, numpy as np, sys
a, b = sys.argv[1:3]
bad = []
for ck in ("search.h5", "finetune.h5"):
    with h5py.File(a + "/" + ck, "r") as x, h5py.File(b + "/" + ck, "r") as y:
        for name in ("/net/param", "/net/stats", "/dense/mask", "/dense/alpha"):
            if name in x and not np.array_equal(x[name][()], y[name][()]):
                bad.append(ck + name)
def rows(path):
    out = {}
    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and not name.endswith("images_per_s"):
            out[name] = obj[()]
    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return out
x, y = rows(a + ".h5"), rows(b + ".h5")
bad += [k for k in x if k not in y or x[k].shape != y[k].shape
        or not np.array_equal(x[k], y[k], equal_nan=True)]
print("same" if not bad and x else "differ: " + " ".join(bad[:5]))
