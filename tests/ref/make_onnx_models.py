#!/usr/bin/python3
"""ONNX files written by Debian's PyTorch 1.13 and torchvision 0.14, and
PyTorch's logits on a batch, for dnal's ONNX importer tests
(tests/unit/test_onnx.c, tests/cli/test_onnx.sh). Run once with Debian's
interpreter; the outputs are committed and the suite does not need PyTorch:

    /usr/bin/python3 tests/ref/make_onnx_models.py [OUTDIR]      (default: tests/ref)

writes OUTDIR/onnx/{resnet20,resnet18,mobilenet_v2}.onnx and
OUTDIR/onnx_ref.h5 (/<model>/input, /<model>/logits: 4 images each):

  resnet20      the CIFAR ResNet-20 (He et al. 2016; the zero-padded
                shortcut F.pad(x[:, :, ::2, ::2]) as in the common PyTorch
                implementation), dnal's zoo resnet20 at width 0.25 (4-8-16
                channels), 1x28x28 inputs (Fashion-MNIST), opset 13
  resnet18      torchvision's ResNet (its BasicBlock and _make_layer, 7x7
                stem, max pool, projection shortcuts) at widths 4-8-16-32,
                3x32x32 inputs, opset 11
  mobilenet_v2  torchvision's MobileNetV2 at width 0.5 with four stages
                (the last of expansion 4) and a 64-channel last conv, 3x32x32 inputs, opset 17

Weights and BN statistics are random (BN scale, shift, mean and variance
away from their defaults), except the stem's BN and the first block's first
BN of resnet20, left at PyTorch's defaults so that the exporter shares their
equal initializers through Identity nodes (as it does in an untrained
network). Every file is exported in eval mode with
training=TrainingMode.PRESERVE, which keeps the BatchNormalization nodes
(eval mode folds them into the convolutions), and a dynamic batch.

    /usr/bin/python3 tests/ref/make_onnx_models.py --fuzz-seed OUT.onnx

writes a ResNet-8 of 2-4-8 channels on 1x8x8 inputs, the seed of the ONNX
importer's fuzzing corpus (tests/fuzz/corpus/onnx/resnet8).

    /usr/bin/python3 tests/ref/make_onnx_models.py --quality OUT.onnx [--seed S] [--weights-from F.onnx]

writes the untrained full-width ResNet-20 for 1x28x28 inputs, initialised as
dnal initialises its zoo (conv weights He-normal with fan-out, BN 1 and 0,
linear uniform +-1/sqrt(fan_in)) from PyTorch's generator, or with the
weights of F.onnx (`dnal export` of the zoo resnet20's initial checkpoint:
dnal's own starting point, stem.* named conv1/bn1 in PyTorch), for the
comparison of `dnal search` on it with the built-in resnet20 (README,
"Bring your own network").
"""
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models.resnet import BasicBlock, ResNet
from torchvision.ops.misc import Conv2dNormActivation


class BlockA(nn.Module):
    """The CIFAR basic block with the parameter-free shortcut (option A)."""

    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = (planes - cin) // 2 if stride != 1 or cin != planes else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = x if self.pad is None else F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(out + sc)


class ResNetCifar(nn.Module):
    def __init__(self, depth=20, width=1.0, in_channels=3, classes=10):
        super().__init__()
        w = [max(1, round(c * width)) for c in (16, 32, 64)]
        self.conv1 = nn.Conv2d(in_channels, w[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w[0])
        blocks, cin = [], w[0]
        for s in range(3):
            layer = []
            for i in range((depth - 2) // 6):
                layer.append(BlockA(cin, w[s], 2 if s > 0 and i == 0 else 1))
                cin = w[s]
            blocks.append(nn.Sequential(*layer))
        self.layer1, self.layer2, self.layer3 = blocks
        self.fc = nn.Linear(w[2], classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class SmallResNet18(ResNet):
    """torchvision's ResNet-18 layout (its forward, BasicBlock and
    _make_layer) at other widths."""

    def __init__(self, widths=(4, 8, 16, 32), classes=10):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = widths[0], 1, 1, 64
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(BasicBlock, widths[0], 2)
        self.layer2 = self._make_layer(BasicBlock, widths[1], 2, stride=2)
        self.layer3 = self._make_layer(BasicBlock, widths[2], 2, stride=2)
        self.layer4 = self._make_layer(BasicBlock, widths[3], 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[3], classes)


def small_mobilenet_v2():
    setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [4, 48, 2, 2]]
    m = torchvision.models.MobileNetV2(num_classes=10, width_mult=0.5,
                                       inverted_residual_setting=setting)
    last_in = m.features[-1][0].in_channels
    m.features[-1] = Conv2dNormActivation(last_in, 64, kernel_size=1, activation_layer=nn.ReLU6)
    m.classifier[1] = nn.Linear(64, 10)
    return m


def randomise(model, gen, keep_default=()):
    for name, mod in model.named_modules():
        if isinstance(mod, nn.BatchNorm2d) and name not in keep_default:
            c = mod.num_features
            mod.weight.data = torch.rand(c, generator=gen) + 0.5
            mod.bias.data = torch.randn(c, generator=gen) * 0.1
            mod.running_mean.data = torch.randn(c, generator=gen) * 0.1
            mod.running_var.data = torch.rand(c, generator=gen) + 0.5


def dnal_init(model, gen):
    """dnal_model_init's distributions (src/models/zoo.c)."""
    for mod in model.modules():
        if isinstance(mod, nn.Conv2d):
            fan_out = mod.out_channels * mod.kernel_size[0] * mod.kernel_size[1]
            mod.weight.data = torch.randn(mod.weight.shape, generator=gen) * (2.0 / fan_out) ** 0.5
        elif isinstance(mod, nn.Linear):
            b = 1.0 / mod.in_features ** 0.5
            mod.weight.data = (torch.rand(mod.weight.shape, generator=gen) * 2 - 1) * b
            mod.bias.data = (torch.rand(mod.bias.shape, generator=gen) * 2 - 1) * b


def export(model, shape, path, opset):
    model.eval()
    x = torch.zeros(2, *shape)
    torch.onnx.export(model, x, path, opset_version=opset, input_names=["input"],
                      output_names=["logits"], training=torch.onnx.TrainingMode.PRESERVE,
                      do_constant_folding=False,
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})


def main():
    torch.set_num_threads(2)
    if len(sys.argv) > 1 and sys.argv[1] == "--fuzz-seed":
        # a ResNet-8 of 2-4-8 channels on 1x8x8: the shortcut's Slice, Pad and
        # folded constants in a few KB (tests/fuzz/corpus/onnx)
        m = ResNetCifar(8, 0.125, in_channels=1)
        randomise(m, torch.Generator().manual_seed(3))
        export(m, (1, 8, 8), sys.argv[2], 13)
        print("wrote", sys.argv[2], os.path.getsize(sys.argv[2]), "bytes")
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--quality":
        seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 1
        gen = torch.Generator().manual_seed(seed)
        m = ResNetCifar(20, 1.0, in_channels=1)
        dnal_init(m, gen)
        if "--weights-from" in sys.argv:  # dnal's own initial weights (dnal export of them)
            import onnx
            from onnx import numpy_helper
            src = onnx.load(sys.argv[sys.argv.index("--weights-from") + 1])
            weights = {t.name.replace("stem.conv", "conv1").replace("stem.bn", "bn1"):
                       torch.from_numpy(numpy_helper.to_array(t).copy()) for t in src.graph.initializer}
            state = m.state_dict()
            for k in state:
                if k.endswith("num_batches_tracked"):
                    continue
                assert weights[k].shape == state[k].shape, k
                state[k] = weights[k]
            m.load_state_dict(state)
        export(m, (1, 28, 28), sys.argv[2], 13)
        print("wrote", sys.argv[2], sum(p.numel() for p in m.parameters()), "parameters")
        return
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    os.makedirs(os.path.join(out, "onnx"), exist_ok=True)
    gen = torch.Generator().manual_seed(2024)
    torch.manual_seed(2024)
    models = [
        ("resnet20", ResNetCifar(20, 0.25, in_channels=1), (1, 28, 28), 13, ("bn1", "layer1.0.bn1")),
        ("resnet18", SmallResNet18(), (3, 32, 32), 11, ()),
        ("mobilenet_v2", small_mobilenet_v2(), (3, 32, 32), 17, ()),
    ]
    with h5py.File(os.path.join(out, "onnx_ref.h5"), "w") as ref:
        for name, model, shape, opset, keep in models:
            randomise(model, gen, keep)
            path = os.path.join(out, "onnx", name + ".onnx")
            export(model, shape, path, opset)
            x = torch.randn(4, *shape, generator=gen)
            with torch.no_grad():
                y = model.eval()(x)
            ref[name + "/input"] = x.numpy().astype(np.float32)
            ref[name + "/logits"] = y.numpy().astype(np.float32)
            ref[name].attrs["opset"] = opset
            ref[name].attrs["params"] = sum(p.numel() for p in model.parameters())
            print(name, path, os.path.getsize(path), "bytes", ref[name].attrs["params"], "parameters")


if __name__ == "__main__":
    main()
