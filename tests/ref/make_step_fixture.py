#!/usr/bin/python3
"""Writes tests/ref/resnet20_step.h5: SGD steps of CIFAR-style ResNet-20
(1x28x28 inputs, 10 classes, zero-padded shortcuts) in PyTorch, from given
initial weights, for tests/unit/test_step_ref.c.

    /usr/bin/python3 tests/ref/make_step_fixture.py

SGD: lr 0.1, momentum 0.9, weight decay 1e-4 on conv and linear parameters
only (not on BN), batch 8, two batches. The reference runs in float64 from
the float32 initial weights and inputs. The same steps are also run in
float32 and, for every compared tensor, the float32 run's error against
float64 is stored: some gradients are sums of nearly cancelling terms (BN's
backward removes each channel's mean), so a float32 implementation can only
be held to "as close as PyTorch's own float32 run". The batches are drawn
until no ReLU input (in either step) lies within 1e-6 of 0, where float32 and
float64 could take different branches. The same steps are run a third time
in float32 under torch.autocast("cpu", dtype=torch.bfloat16) (convolutions,
BN, ReLU, adds and the classifier in bf16, the loss in float32), and its
error against float64 is stored too: what dnal's run.dtype=bf16 is held to.
Layout:

    x1, x2 (8x1x28x28 float32), y1, y2 (int32 labels)
    param/<layer>/<name>              initial weights, float32 (dnal names)
    expect/loss1, expect/loss2        float64; expect/fp32err/loss1, loss2
    expect/delta1/<layer>/<name>      weights after the first step minus before
    expect/stats1/<layer>/{mean,var}  BN running statistics after the first step
    expect/fp32err/<key>              for every tensor above: max |float32 - float64|
                                      / max |float64| of PyTorch's float32 run
    expect/bf16err/<key>              the same for PyTorch's bf16 autocast run
"""
import os

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "resnet20_step.h5")
torch.set_num_threads(2)
torch.manual_seed(7)
KINK_MARGIN = 1e-6
closest_to_kink = [float("inf")]


def relu(t):
    """ReLU that records how close any input came to the kink: there float32
    and float64 can take different branches, a difference of arithmetic, not
    of the implementation, so the fixture avoids such inputs."""
    closest_to_kink[0] = min(closest_to_kink[0], float(t.detach().abs().min()))
    return F.relu(t)


class Block(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.stride, self.pad = stride, (planes - cin) // 2

    def forward(self, x):
        t = relu(self.bn1(self.conv1(x)))
        t = self.bn2(self.conv2(t))
        s = x
        if self.stride != 1 or self.pad:
            s = F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, self.pad, self.pad))
        return relu(t + s)


class ResNet20(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for s, planes in enumerate([16, 32, 64]):
            for i in range(3):
                blocks.append(("layer%d.%d" % (s + 1, i), Block(cin, planes, 2 if s and not i else 1)))
                cin = planes
        self.names = [n for n, _ in blocks]
        self.blocks = nn.ModuleList([b for _, b in blocks])
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = relu(self.bn(self.conv(x)))
        for b in self.blocks:
            x = b(x)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))

    def dnal_params(self):
        """(dnal layer name, dnal param name, tensor) for every parameter."""
        out = [("stem.conv", "weight", self.conv.weight), ("stem.bn", "scale", self.bn.weight),
               ("stem.bn", "shift", self.bn.bias)]
        for n, b in zip(self.names, self.blocks):
            for k in ("1", "2"):
                out += [(n + ".conv" + k, "weight", getattr(b, "conv" + k).weight),
                        (n + ".bn" + k, "scale", getattr(b, "bn" + k).weight),
                        (n + ".bn" + k, "shift", getattr(b, "bn" + k).bias)]
        return out + [("fc", "weight", self.fc.weight), ("fc", "bias", self.fc.bias)]

    def dnal_bns(self):
        yield "stem.bn", self.bn
        for n, b in zip(self.names, self.blocks):
            yield n + ".bn1", b.bn1
            yield n + ".bn2", b.bn2


def initial_weights(rng):
    """float32 weights: PyTorch's default init, BN affine randomised a little."""
    init = {}
    with torch.no_grad():
        for layer, name, p in ResNet20().dnal_params():
            if name == "scale":
                p.copy_(torch.tensor(rng.uniform(0.8, 1.2, size=p.shape)))
            elif name == "shift":
                p.copy_(torch.tensor(rng.uniform(-0.1, 0.1, size=p.shape)))
            init[(layer, name)] = p.detach().numpy().astype(np.float32).copy()
    return init


def run(init, batches, dtype, autocast=False):
    """Two SGD steps; returns the losses, the weight change after the first
    step and the BN running statistics after the first step. autocast: in
    float32 with the forward under bf16 autocast."""
    model = ResNet20().to(dtype)
    with torch.no_grad():
        for layer, name, p in model.dnal_params():
            p.copy_(torch.tensor(init[(layer, name)]).to(dtype))
    decay = [p for l, n, p in model.dnal_params() if n in ("weight", "bias")]
    no_decay = [p for l, n, p in model.dnal_params() if n in ("scale", "shift")]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 1e-4},
                           {"params": no_decay, "weight_decay": 0.0}], lr=0.1, momentum=0.9)
    losses, delta1, stats1 = [], {}, {}
    model.train()
    for x, y in batches:
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = model(torch.tensor(x).to(dtype))
        loss = F.cross_entropy(out.float(), torch.tensor(y.astype(np.int64)))
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if not delta1:
            for layer, name, p in model.dnal_params():
                delta1[(layer, name)] = p.detach().double().numpy() - init[(layer, name)].astype(np.float64)
            for layer, bn in model.dnal_bns():
                stats1[(layer, "mean")] = bn.running_mean.double().numpy().copy()
                stats1[(layer, "var")] = bn.running_var.double().numpy().copy()
    return losses, delta1, stats1


def rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def main():
    rng = np.random.RandomState(3)
    init = initial_weights(rng)
    while True:  # batches whose ReLU inputs all stay clear of the kink
        batches = [(rng.uniform(-1.5, 2.0, size=(8, 1, 28, 28)).astype(np.float32),
                    rng.randint(0, 10, size=8).astype(np.int32)) for _ in range(2)]
        closest_to_kink[0] = float("inf")
        loss64, delta64, stats64 = run(init, batches, torch.float64)
        if closest_to_kink[0] >= KINK_MARGIN:
            break
        print("batches rejected: a ReLU input at %.1e from the kink" % closest_to_kink[0])
    loss32, delta32, stats32 = run(init, batches, torch.float32)
    loss16, delta16, stats16 = run(init, batches, torch.float32, autocast=True)
    with h5py.File(OUT, "w") as f:
        f.attrs["generator"] = "tests/ref/make_step_fixture.py, torch %s" % torch.__version__
        for i, (x, y) in enumerate(batches):
            f["x%d" % (i + 1)] = x
            f["y%d" % (i + 1)] = y
        for i in range(2):
            f["expect/loss%d" % (i + 1)] = loss64[i]
            f["expect/fp32err/loss%d" % (i + 1)] = abs(loss32[i] - loss64[i]) / abs(loss64[i])
            f["expect/bf16err/loss%d" % (i + 1)] = abs(loss16[i] - loss64[i]) / abs(loss64[i])
        for (layer, name), d in delta64.items():
            f["param/%s/%s" % (layer, name)] = init[(layer, name)]
            f["expect/delta1/%s/%s" % (layer, name)] = d.astype(np.float32)
            f["expect/fp32err/delta1/%s/%s" % (layer, name)] = rel(delta32[(layer, name)], d)
            f["expect/bf16err/delta1/%s/%s" % (layer, name)] = rel(delta16[(layer, name)], d)
        for (layer, which), v in stats64.items():
            f["expect/stats1/%s/%s" % (layer, which)] = v
            f["expect/fp32err/stats1/%s/%s" % (layer, which)] = rel(stats32[(layer, which)], v)
            f["expect/bf16err/stats1/%s/%s" % (layer, which)] = rel(stats16[(layer, which)], v)
    print("wrote %s (losses %.6f %.6f, %d bytes)" % (OUT, loss64[0], loss64[1], os.path.getsize(OUT)))


if __name__ == "__main__":
    main()
