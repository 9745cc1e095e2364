#!/usr/bin/python3
"""dnal's zoo models in PyTorch, layer for layer (src/models/), without
gates: the plain networks a PyTorch user would train. With --steps, times
the step `dnal bench` times (src/cli/bench.c): forward, cross-entropy,
backward, SGD with momentum and weight decay at lr 1e-3, on synthetic data,
and prints one line

    torch model=M variant=V batch=B threads=T images_per_s=... step_ms=... params=N

Variants: nchw (fp32, contiguous), cl (fp32, channels_last), cl-bf16
(channels_last under torch.autocast("cpu", dtype=torch.bfloat16); ReLU6
as clamp(0, 6) there, since torch 1.13 has no bf16 backward of nn.ReLU6).
--params prints `params model=M params=N flops=F image_size=S`: parameters (conv,
linear, BN scale and shift) and multiply-adds per image of conv and linear
layers, as dnal counts them (the bench line's params= and flops= fields),
and the zoo's input size.

    /usr/bin/python3 jobs/bench/torch_models.py resnet56 --variant cl --batch 128 --steps 10 --warmup 3
    /usr/bin/python3 jobs/bench/torch_models.py resnet56 --params
"""
import argparse
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def divisible8(v):
    """mb_divisible8 (torchvision's _make_divisible)"""
    r = max(8, int(v + 4) // 8 * 8)
    return r + 8 if r < 0.9 * v else r


def unit(in_c, out_c, kernel, stride=1, groups=1, act=None):
    """mb_unit without its gate: conv (padding k/2, no bias), BN, activation"""
    layers = [nn.Conv2d(in_c, out_c, kernel, stride, kernel // 2, groups=groups, bias=False),
              nn.BatchNorm2d(out_c)]
    if act is not None:
        layers.append(act(inplace=True))
    return nn.Sequential(*layers)


class Head(nn.Module):
    """mb_head: global average pooling and the classifier (the loss is the step's)"""

    def __init__(self, in_c, classes):
        super().__init__()
        self.fc = nn.Linear(in_c, classes)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class CifarBlock(nn.Module):
    """basic block with the zero-padded (option A) shortcut: x subsampled by a
    stride-2 1x1 average pool, placed at the middle channels"""

    def __init__(self, in_c, planes, stride):
        super().__init__()
        self.branch = nn.Sequential(unit(in_c, planes, 3, stride, act=nn.ReLU), unit(planes, planes, 3))
        self.stride, self.pad = stride, (planes - in_c) // 2
        self.padded = stride != 1 or in_c != planes

    def forward(self, x):
        s = x
        if self.padded:
            if self.stride > 1:
                s = F.avg_pool2d(s, 1, self.stride)
            s = F.pad(s, (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(self.branch(x) + s)


def resnet_cifar(depth, classes):
    blocks = (depth - 2) // 6
    layers, c = [unit(3, 16, 3, act=nn.ReLU)], 16
    for s in range(3):
        planes = 16 << s
        for i in range(blocks):
            layers.append(CifarBlock(c, planes, 2 if s > 0 and i == 0 else 1))
            c = planes
    return nn.Sequential(*layers, Head(c, classes))


class ImagenetBlock(nn.Module):
    """torchvision's basic block and bottleneck (stride on the 3x3 conv), 1x1
    projection shortcut where the shape changes"""

    def __init__(self, in_c, planes, stride, bottleneck):
        super().__init__()
        out_c = planes * (4 if bottleneck else 1)
        if bottleneck:
            self.branch = nn.Sequential(unit(in_c, planes, 1, act=nn.ReLU),
                                        unit(planes, planes, 3, stride, act=nn.ReLU),
                                        unit(planes, out_c, 1))
        else:
            self.branch = nn.Sequential(unit(in_c, planes, 3, stride, act=nn.ReLU),
                                        unit(planes, planes, 3))
        self.downsample = unit(in_c, out_c, 1, stride) if stride != 1 or in_c != out_c else None

    def forward(self, x):
        s = x if self.downsample is None else self.downsample(x)
        return F.relu(self.branch(x) + s)


def resnet_imagenet(depth, classes):
    counts = [2, 2, 2, 2] if depth == 18 else [3, 4, 6, 3]
    bottleneck = depth == 50
    layers = [unit(3, 64, 7, 2, act=nn.ReLU), nn.MaxPool2d(3, 2, 1)]
    c = 64
    for s in range(4):
        planes = 64 << s
        for i in range(counts[s]):
            layers.append(ImagenetBlock(c, planes, 2 if s > 0 and i == 0 else 1, bottleneck))
            c = planes * (4 if bottleneck else 1)
    return nn.Sequential(*layers, Head(c, classes))


def vgg16(imagenet, classes, image_size):
    plan = [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0]
    layers, c, h = [], 3, image_size
    for p in plan:
        if p == 0:
            if h >= 2:  # dnal skips a pool that would shrink a 1x1 map
                layers.append(nn.MaxPool2d(2, 2))
                h //= 2
            continue
        layers.append(unit(c, p, 3, act=nn.ReLU))
        c = p
    layers.append(nn.Flatten())
    flat = c * h * h
    if imagenet:
        layers += [nn.Linear(flat, 4096), nn.ReLU(inplace=True), nn.Linear(4096, 4096),
                   nn.ReLU(inplace=True), nn.Linear(4096, classes)]
    else:
        layers += [nn.Linear(flat, 512), nn.BatchNorm1d(512), nn.ReLU(inplace=True),
                   nn.Linear(512, classes)]
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, in_c, out_c, t, stride):
        super().__init__()
        hidden = round(in_c * t)
        layers = [unit(in_c, hidden, 1, act=nn.ReLU6)] if t != 1 else []
        layers += [unit(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6), unit(hidden, out_c, 1)]
        self.branch = nn.Sequential(*layers)
        self.residual = stride == 1 and in_c == out_c

    def forward(self, x):
        y = self.branch(x)
        return y + x if self.residual else y


def mobilenetv2(imagenet, classes):
    plan = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
            (6, 160, 3, 2), (6, 320, 1, 1)]
    c = divisible8(32)
    layers = [unit(3, c, 3, 2 if imagenet else 1, act=nn.ReLU6)]
    for s, (t, width, n, stride) in enumerate(plan):
        out_c = divisible8(width)
        stride0 = 1 if not imagenet and s == 1 else stride  # CIFAR: stride 1 in the second stage
        for i in range(n):
            layers.append(InvertedResidual(c, out_c, t, stride0 if i == 0 else 1))
            c = out_c
    last = divisible8(1280)
    layers.append(unit(c, last, 1, act=nn.ReLU6))
    return nn.Sequential(*layers, Head(last, classes))


# name: (builder(classes), image size, classes), as src/models/zoo.c's table
ZOO = {
    "vgg16": (lambda k: vgg16(False, k, 32), 32, 10),
    "resnet20": (lambda k: resnet_cifar(20, k), 32, 10),
    "resnet56": (lambda k: resnet_cifar(56, k), 32, 10),
    "resnet110": (lambda k: resnet_cifar(110, k), 32, 10),
    "mobilenetv2": (lambda k: mobilenetv2(False, k), 32, 10),
    "resnet18": (lambda k: resnet_imagenet(18, k), 224, 1000),
    "resnet34": (lambda k: resnet_imagenet(34, k), 224, 1000),
    "resnet50": (lambda k: resnet_imagenet(50, k), 224, 1000),
    "vgg16-imagenet": (lambda k: vgg16(True, k, 224), 224, 1000),
    "mobilenetv2-imagenet": (lambda k: mobilenetv2(True, k), 224, 1000),
}


def build(name):
    make, size, classes = ZOO[name]
    model = make(classes)
    for m in model.modules():  # dnal_model_init's scheme (speed does not depend on it)
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return model, size, classes


class ClampReLU6(nn.Module):
    """ReLU6 as clamp(0, 6): torch 1.13 has no bf16 kernel for hardtanh's
    backward on CPU (nn.ReLU6 under autocast fails in backward)"""

    def forward(self, x):
        return x.clamp(0, 6)


def clamp_relu6(model):
    for name, m in list(model.named_modules()):
        for child_name, child in list(m.named_children()):
            if isinstance(child, nn.ReLU6):
                setattr(m, child_name, ClampReLU6())
    return model


def count_params(model):
    return sum(p.numel() for p in model.parameters())


def count_flops(model, size):
    """multiply-adds of conv and linear layers per image, dnal's convention"""
    total = []

    def hook(m, inputs, out):
        if isinstance(m, nn.Conv2d):
            total.append(out[0].numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1])
        else:
            total.append(m.in_features * m.out_features)

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for h in hooks:
        h.remove()
    return sum(total)


def bench(name, variant, batch, steps, warmup, threads, momentum, weight_decay):
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    model, size, classes = build(name)
    bf16 = variant == "cl-bf16"
    if bf16:
        model = clamp_relu6(model)
    model.train()
    x = torch.rand(batch, 3, size, size) * 2 - 1
    y = torch.arange(batch) % classes
    if variant in ("cl", "cl-bf16"):
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=momentum, weight_decay=weight_decay)
    total = 0.0
    for s in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if s >= warmup:
            total += time.perf_counter() - t0
    print(f"torch model={name} variant={variant} batch={batch} threads={torch.get_num_threads()} "
          f"images_per_s={batch * steps / total:.1f} step_ms={total * 1e3 / steps:.3f} "
          f"params={count_params(model)} torch={torch.__version__}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", choices=sorted(ZOO))
    ap.add_argument("--params", action="store_true", help="print the parameter and FLOPs counts and exit")
    ap.add_argument("--variant", choices=["nchw", "cl", "cl-bf16"], default="nchw")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--momentum", type=float, default=0.9, help="dnal's pretrain.momentum")
    ap.add_argument("--weight-decay", type=float, default=1e-4, help="dnal's pretrain.weight_decay")
    a = ap.parse_args()
    if a.params:
        model, size, _ = build(a.model)
        print(f"params model={a.model} params={count_params(model)} flops={count_flops(model, size)} "
              f"image_size={size}")
        return 0
    bench(a.model, a.variant, a.batch, a.steps, a.warmup, a.threads, a.momentum, a.weight_decay)
    return 0


if __name__ == "__main__":
    sys.exit(main())
