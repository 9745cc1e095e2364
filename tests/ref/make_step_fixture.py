#!/usr/bin/python3
"""Writes tests/ref/resnet20_step.h5: two SGD steps of CIFAR-style ResNet-20
(1x28x28 inputs, 10 classes, zero-padded shortcuts) in PyTorch, from given
initial weights, for tests/unit/test_step_ref.c.

    /usr/bin/python3 tests/ref/make_step_fixture.py

SGD: lr 0.1, momentum 0.9, weight decay 1e-4 on conv and linear parameters
only (not on BN), batch 8, two batches. The reference runs in float64 from
the float32 initial weights and inputs. Layout:

    x1, x2 (8x1x28x28 float32), y1, y2 (int32 labels)
    param/<layer>/<name>        initial weights, float32 (dnal names)
    expect/loss1, expect/loss2  float64
    expect/delta/<layer>/<name> weights after two steps minus before, float32
    expect/stats/<layer>/{mean,var}  BN running statistics after two steps
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


class Block(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.stride, self.pad = stride, (planes - cin) // 2

    def forward(self, x):
        t = F.relu(self.bn1(self.conv1(x)))
        t = self.bn2(self.conv2(t))
        s = x
        if self.stride != 1 or self.pad:
            s = F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(t + s)


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
        x = F.relu(self.bn(self.conv(x)))
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


def main():
    model = ResNet20()
    rng = np.random.RandomState(3)
    init = {}
    with torch.no_grad():  # float32 initial weights, BN affine randomised a little
        for layer, name, p in model.dnal_params():
            if name in ("scale", "shift"):
                p.copy_(torch.tensor(rng.uniform(0.8, 1.2) if name == "scale" else 0.0) +
                        torch.tensor(rng.uniform(-0.1, 0.1, size=p.shape)))
            init[(layer, name)] = p.detach().numpy().astype(np.float32).copy()
    model = model.double()
    with torch.no_grad():
        for layer, name, p in model.dnal_params():
            p.copy_(torch.tensor(init[(layer, name)].astype(np.float64)))
    decay = [p for l, n, p in model.dnal_params() if n in ("weight", "bias")]
    no_decay = [p for l, n, p in model.dnal_params() if n in ("scale", "shift")]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 1e-4},
                           {"params": no_decay, "weight_decay": 0.0}], lr=0.1, momentum=0.9)
    batches = []
    for _ in range(2):
        x = rng.uniform(-1.5, 2.0, size=(8, 1, 28, 28)).astype(np.float32)
        y = rng.randint(0, 10, size=8).astype(np.int32)
        batches.append((x, y))
    losses = []
    model.train()
    for x, y in batches:
        opt.zero_grad()
        loss = F.cross_entropy(model(torch.tensor(x.astype(np.float64))), torch.tensor(y.astype(np.int64)))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with h5py.File(OUT, "w") as f:
        f.attrs["generator"] = "tests/ref/make_step_fixture.py, torch %s" % torch.__version__
        for i, (x, y) in enumerate(batches):
            f["x%d" % (i + 1)] = x
            f["y%d" % (i + 1)] = y
        f["expect/loss1"], f["expect/loss2"] = losses
        for layer, name, p in model.dnal_params():
            f["param/%s/%s" % (layer, name)] = init[(layer, name)]
            delta = p.detach().numpy() - init[(layer, name)].astype(np.float64)
            f["expect/delta/%s/%s" % (layer, name)] = delta.astype(np.float32)
        for layer, bn in model.dnal_bns():
            f["expect/stats/%s/mean" % layer] = bn.running_mean.numpy()
            f["expect/stats/%s/var" % layer] = bn.running_var.numpy()
    print("wrote %s (losses %.6f %.6f, %d bytes)" % (OUT, losses[0], losses[1], os.path.getsize(OUT)))


if __name__ == "__main__":
    main()
