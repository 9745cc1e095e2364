#!/usr/bin/python3
"""Writes tests/ref/fixtures.h5: PyTorch reference outputs and gradients for
every dnal layer kind and for one ResNet basic block.

Run once with Debian's PyTorch (python3-torch) and commit the result:

    /usr/bin/python3 tests/ref/make_fixtures.py

Inputs and parameters are float32 (what dnal computes with); the references
are computed in float64 from those same values. Layout of one case group:

    attrs     layout ("native": the CPU's blocked layout, or "nchw"), train,
              gate_mode (0 off, 1 search, 2 pruned), beta
    x         input, N x C x H x W (or N x K logits)
    dy        upstream gradient of the output (absent with a loss)
    labels    int32 N (softmax-ce)
    param/<layer>/<name>     float32, PyTorch shapes (conv weight O x I/g x k x k)
    alpha/<layer>, mask/<layer>       float32 C (gates)
    stats/<layer>/{mean,var}          float32 C, running statistics before the pass
    expect/y, expect/dx, expect/loss  float64
    expect/grad/<layer>/<name>, expect/dalpha/<layer>
    expect/stats/<layer>/{mean,var}   running statistics after the pass

The C side (tests/unit/test_layers_ref.c) builds the same network per case.
"""
import os

import h5py
import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures.h5")
torch.set_num_threads(2)


class Case:
    def __init__(self, name, seed, layout="native", train=1, gate_mode=0, beta=1.0):
        self.name = name
        self.rng = np.random.RandomState(seed)
        self.attrs = dict(layout=layout, train=train, gate_mode=gate_mode, beta=beta)
        self.data = {}      # name -> float32/int32 array written as input
        self.leaves = {}    # name -> float64 leaf tensor requiring grad
        self.expect = {}

    def uniform(self, shape, lo=-1.0, hi=1.0):
        return self.rng.uniform(lo, hi, size=shape).astype(np.float32)

    def leaf(self, key, value):
        """Stores value (float32) as input `key` and returns a float64 leaf."""
        self.data[key] = value
        t = torch.tensor(value.astype(np.float64), requires_grad=True)
        self.leaves[key] = t
        return t

    def param(self, layer, name, shape, lo=-0.5, hi=0.5):
        return self.leaf("param/%s/%s" % (layer, name), self.uniform(shape, lo, hi))

    def bn(self, layer, x, train):
        c = x.shape[1]
        if train:
            mean, var = np.zeros(c, np.float32), np.ones(c, np.float32)
        else:
            mean, var = self.uniform(c, -0.3, 0.3), self.uniform(c, 0.5, 1.5)
        self.data["stats/%s/mean" % layer] = mean
        self.data["stats/%s/var" % layer] = var
        rm = torch.tensor(mean.astype(np.float64))
        rv = torch.tensor(var.astype(np.float64))
        w = self.param(layer, "scale", c, 0.5, 1.5)
        b = self.param(layer, "shift", c)
        y = F.batch_norm(x, rm, rv, w, b, training=bool(train), momentum=0.1, eps=1e-5)
        self.expect["stats/%s/mean" % layer] = rm.numpy()
        self.expect["stats/%s/var" % layer] = rv.numpy()
        return y

    def gate(self, layer, x):
        c = x.shape[1]
        beta, mode = self.attrs["beta"], self.attrs["gate_mode"]
        alpha = self.leaf("alpha/%s" % layer, self.uniform(c, -3.0 / beta, 3.0 / beta))
        mask = np.ones(c, np.float32)
        mask[::3] = 0.0
        self.data["mask/%s" % layer] = mask
        m = torch.tensor(mask.astype(np.float64))
        if mode == 1:
            g = torch.sigmoid(beta * alpha) * m
        elif mode == 2:
            g = m + 0.0 * alpha
        else:
            g = torch.ones(c, dtype=torch.float64) + 0.0 * alpha
        return x * g.view(1, -1, 1, 1)

    def finish(self, out, loss=None):
        if loss is None:
            dy = self.uniform(tuple(out.shape))
            self.data["dy"] = dy
            out.backward(torch.tensor(dy.astype(np.float64)))
            self.expect["y"] = out.detach().numpy()
        else:
            loss.backward()
            self.expect["loss"] = np.array(loss.item())
        for key, t in self.leaves.items():
            if key == "x":
                self.expect["dx"] = t.grad.numpy()
            elif key.startswith("param/"):
                self.expect["grad/" + key[len("param/"):]] = t.grad.numpy()
            elif key.startswith("alpha/"):
                self.expect["dalpha/" + key[len("alpha/"):]] = t.grad.numpy()

    def write(self, f):
        g = f.create_group(self.name)
        for k, v in self.attrs.items():  # fixed-length strings: plain for C readers
            g.attrs[k] = np.bytes_(v) if isinstance(v, str) else v
        for k, v in self.data.items():
            g.create_dataset(k, data=v)
        for k, v in self.expect.items():
            v = np.asarray(v, np.float64)
            g.create_dataset("expect/" + k, data=v)


def conv_case(name, seed, n, c, hw, out_c, k, stride, pad, groups=1, bias=False, layout="native"):
    cs = Case(name, seed, layout=layout)
    x = cs.leaf("x", cs.uniform((n, c, hw, hw)))
    w = cs.param("conv", "weight", (out_c, c // groups, k, k))
    b = cs.param("conv", "bias", out_c) if bias else None
    cs.finish(F.conv2d(x, w, b, stride=stride, padding=pad, groups=groups))
    return cs


def simple(name, seed, shape, fn, lo=-1.0, hi=1.0, **attrs):
    cs = Case(name, seed, **attrs)
    x = cs.leaf("x", cs.uniform(shape, lo, hi))
    cs.finish(fn(cs, x))
    return cs


def softmax_ce(seed):
    cs = Case("softmax_ce", seed)
    z = cs.leaf("x", cs.uniform((8, 10), -2, 2))
    labels = cs.rng.randint(0, 10, size=8).astype(np.int32)
    cs.data["labels"] = labels
    cs.finish(None, F.cross_entropy(z, torch.tensor(labels.astype(np.int64))))
    return cs


def scatter_add(seed):
    cs = Case("scatter_add", seed)
    x = cs.leaf("x", cs.uniform((2, 16, 4, 4)))
    b = F.conv2d(x, cs.param("conv", "weight", (6, 16, 1, 1)))
    idx = [1, 3, 4, 8, 9, 15]
    y = x.clone()
    y[:, idx] = y[:, idx] + b
    cs.finish(y)
    return cs


def basic_block(seed):
    """conv-BN-gate-ReLU-conv-BN-gate, + shortcut, ReLU (gates searching)."""
    cs = Case("basic_block", seed, gate_mode=1, beta=5.0)
    x = cs.leaf("x", cs.uniform((2, 16, 8, 8)))
    t = F.conv2d(x, cs.param("conv1", "weight", (16, 16, 3, 3), -0.2, 0.2), padding=1)
    t = F.relu(cs.gate("gate1", cs.bn("bn1", t, True)))
    t = F.conv2d(t, cs.param("conv2", "weight", (16, 16, 3, 3), -0.2, 0.2), padding=1)
    t = cs.gate("gate2", cs.bn("bn2", t, True))
    cs.finish(F.relu(t + x))
    return cs


def down_block(seed):
    """The first block of a CIFAR ResNet stage: stride-2 branch (16 -> 32)
    and the zero-padded shortcut x[:, :, ::2, ::2] (gates searching)."""
    cs = Case("down_block", seed, gate_mode=1, beta=5.0)
    x = cs.leaf("x", cs.uniform((2, 16, 8, 8)))
    t = F.conv2d(x, cs.param("conv1", "weight", (32, 16, 3, 3), -0.2, 0.2), stride=2, padding=1)
    t = F.relu(cs.gate("gate1", cs.bn("bn1", t, True)))
    t = F.conv2d(t, cs.param("conv2", "weight", (32, 32, 3, 3), -0.2, 0.2), padding=1)
    t = cs.gate("gate2", cs.bn("bn2", t, True))
    cs.finish(F.relu(t + F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 8, 8))))
    return cs


def head(seed):
    """ReLU, 7x7 global average pooling, linear, cross-entropy."""
    cs = Case("head", seed)
    x = cs.leaf("x", cs.uniform((8, 64, 7, 7)))
    z = F.linear(F.adaptive_avg_pool2d(F.relu(x), 1).flatten(1), cs.param("fc", "weight", (10, 64)),
                 cs.param("fc", "bias", 10))
    labels = cs.rng.randint(0, 10, size=8).astype(np.int32)
    cs.data["labels"] = labels
    cs.finish(None, F.cross_entropy(z, torch.tensor(labels.astype(np.int64))))
    return cs


def bn_gate(name, seed, shape, act, train=1, gate_mode=1, beta=10.0):
    """BN, gate, then act (None, F.relu or F.relu6): the chains a network
    fuses into one BN primitive (the gate folded into scale and shift)."""
    def fn(cs, x):
        y = cs.gate("gate", cs.bn("bn", x, train)) if gate_mode is not None else cs.bn("bn", x, train)
        return act(y) if act else y
    return simple(name, seed, shape, fn, train=train, gate_mode=gate_mode or 0, beta=beta)


def main():
    cases = [
        conv_case("conv3x3", 1, 2, 16, 6, 24, 3, 1, 1, bias=True),
        conv_case("conv_s2_nchw", 2, 2, 3, 7, 16, 3, 2, 1, layout="nchw"),
        conv_case("conv1x1", 3, 2, 24, 5, 40, 1, 1, 0),
        conv_case("conv_dw", 4, 2, 32, 6, 32, 3, 1, 1, groups=32),
        conv_case("conv_group", 5, 2, 16, 7, 32, 3, 2, 1, groups=2, bias=True),
        simple("bn_train", 6, (3, 20, 4, 4), lambda cs, x: cs.bn("bn", x, True)),
        simple("bn_infer", 7, (2, 20, 4, 4), lambda cs, x: cs.bn("bn", x, False), train=0),
        simple("relu", 8, (2, 20, 4, 4), lambda cs, x: F.relu(x)),
        simple("relu6", 9, (2, 16, 4, 4), lambda cs, x: F.relu6(x), -2.0, 8.0),
        simple("maxpool", 10, (2, 16, 7, 7), lambda cs, x: F.max_pool2d(x, 3, 2, 1)),
        simple("avgpool", 11, (2, 16, 5, 5), lambda cs, x: F.avg_pool2d(x, 3, 1, 1)),
        simple("avgpool2", 12, (2, 16, 6, 6), lambda cs, x: F.avg_pool2d(x, 2, 2, 0)),
        simple("gap", 13, (2, 20, 4, 4), lambda cs, x: F.adaptive_avg_pool2d(x, 1)),
        simple("linear", 14, (3, 32, 2, 2),
               lambda cs, x: F.linear(x.flatten(1), cs.param("fc", "weight", (10, 128)),
                                      cs.param("fc", "bias", 10))),
        simple("add", 15, (2, 16, 3, 3), lambda cs, x: F.relu(x) + x),
        simple("gate_search", 16, (2, 20, 4, 4), lambda cs, x: cs.gate("gate", x),
               gate_mode=1, beta=10.0),
        simple("gate_pruned", 17, (2, 20, 4, 4), lambda cs, x: cs.gate("gate", x),
               gate_mode=2, beta=10.0),
        simple("gate_off", 18, (2, 20, 4, 4), lambda cs, x: cs.gate("gate", x),
               gate_mode=0, beta=10.0),
        softmax_ce(19),
        scatter_add(21),
        simple("shortcut_a", 22, (2, 8, 6, 6),
               lambda cs, x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 4, 4))),
        bn_gate("bng_relu_b1", 25, (3, 20, 4, 4), F.relu, beta=1.0),
        bn_gate("bng_relu_b10", 26, (3, 20, 4, 4), F.relu, beta=10.0),
        bn_gate("bng_relu_b1000", 27, (3, 20, 4, 4), F.relu, beta=1000.0),
        bn_gate("bng_relu_pruned", 28, (3, 20, 4, 4), F.relu, gate_mode=2),
        bn_gate("bng_relu_off", 29, (3, 20, 4, 4), F.relu, gate_mode=0),
        bn_gate("bng_relu_infer", 30, (2, 20, 4, 4), F.relu, train=0),
        bn_gate("bng_relu6", 31, (3, 16, 4, 4), F.relu6),
        bn_gate("bng", 32, (3, 20, 4, 4), None),
        bn_gate("bn_relu", 33, (3, 20, 4, 4), F.relu, gate_mode=None),
        bn_gate("bng_relu_odd", 34, (3, 13, 5, 3), F.relu),
        simple("add_relu", 35, (2, 16, 3, 3), lambda cs, x: F.relu(F.relu(x) + x)),
        basic_block(20),
        down_block(23),
        head(24),
    ]
    with h5py.File(OUT, "w") as f:
        f.attrs["generator"] = "tests/ref/make_fixtures.py, torch %s" % torch.__version__
        for cs in cases:
            cs.write(f)
    print("wrote %s (%d cases, %d bytes)" % (OUT, len(cases), os.path.getsize(OUT)))


if __name__ == "__main__":
    main()
