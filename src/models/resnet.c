/* ResNets. CIFAR: 3 stages of (depth-2)/6 basic blocks, widths 16-32-64,
 * zero-padded (option A, parameter-free) shortcuts, as in He et al. 2016.
 * ImageNet: torchvision's resnet18/34 (basic) and resnet50 (bottleneck, stride
 * on the 3x3 conv) with 1x1 projection shortcuts. Gates after every BN inside
 * a residual branch, including the last one before the addition; with
 * model.gate_stem after the stem's BN too (the authors' resnet_AutoML.py). */
#include <stdlib.h>

#include <stdio.h>

#include "builder.h"

/* x[:, :, ::2, ::2] placed at the middle channels of `out_c` (zeros around) */
static dnal_tensor *padded_shortcut(mb *b, const char *prefix, dnal_tensor *x, int64_t stride,
                                    int64_t out_c)
{
    int64_t pad = (out_c - x->c) / 2, *idx = dnal_alloc(sizeof *idx * (size_t)x->c);
    DNAL_ASSERT(pad >= 0);
    for (int64_t k = 0; k < x->c; k++)
        idx[k] = pad + k;
    if (stride > 1)
        x = dnal_net_pool(b->net, mb_name(b, "%s.subsample", prefix), DNAL_AVGPOOL, x, 1, stride, 0);
    dnal_tensor *s = dnal_net_scatter_add(b->net, mb_name(b, "%s.pad", prefix), x, NULL, out_c, idx);
    free(idx);
    return s;
}

static dnal_tensor *residual(mb *b, const char *prefix, dnal_tensor *branch, dnal_tensor *shortcut)
{
    dnal_tensor *t = dnal_net_residual(b->net, mb_name(b, "%s.add", prefix), branch, shortcut);
    return dnal_net_relu(b->net, mb_name(b, "%s.relu", prefix), t, 0);
}

void resnet_cifar(mb *b, const dnal_model_cfg *cfg, int depth)
{
    int blocks = (depth - 2) / 6;
    char prefix[32];
    dnal_tensor *x = mb_unit(b, "stem", "", b->net->input, mb_scale(16, cfg->width), 3, 1, 1,
                             cfg->gate_stem, ACT_RELU);
    for (int s = 0; s < 3; s++) {
        int64_t planes = mb_scale(16 << s, cfg->width);
        for (int i = 0; i < blocks; i++) {
            int64_t stride = (s > 0 && i == 0) ? 2 : 1;
            snprintf(prefix, sizeof prefix, "layer%d.%d", s + 1, i);
            dnal_tensor *t = mb_unit(b, prefix, "1", x, planes, 3, stride, 1, 1, ACT_RELU);
            t = mb_unit(b, prefix, "2", t, planes, 3, 1, 1, 1, ACT_NONE);
            dnal_tensor *sc = (stride != 1 || x->c != planes)
                                  ? padded_shortcut(b, prefix, x, stride, planes)
                                  : x;
            x = residual(b, prefix, t, sc);
        }
    }
    mb_head(b, x, cfg->classes);
}

void resnet_imagenet(mb *b, const dnal_model_cfg *cfg, int depth)
{
    static const int layout18[4] = {2, 2, 2, 2}, layout34[4] = {3, 4, 6, 3};
    const int *counts = depth == 18 ? layout18 : layout34; /* 50 has 34's layout */
    int bottleneck = depth == 50, expansion = bottleneck ? 4 : 1;
    char prefix[48];
    dnal_tensor *x = mb_unit(b, "stem", "", b->net->input, mb_scale(64, cfg->width), 7, 2, 1,
                             cfg->gate_stem, ACT_RELU);
    x = dnal_net_pool(b->net, "stem.maxpool", DNAL_MAXPOOL, x, 3, 2, 1);
    for (int s = 0; s < 4; s++) {
        int64_t planes = mb_scale(64 << s, cfg->width), out_c = planes * expansion;
        for (int i = 0; i < counts[s]; i++) {
            int64_t stride = (s > 0 && i == 0) ? 2 : 1;
            snprintf(prefix, sizeof prefix, "layer%d.%d", s + 1, i);
            dnal_tensor *t;
            if (bottleneck) {
                t = mb_unit(b, prefix, "1", x, planes, 1, 1, 1, 1, ACT_RELU);
                t = mb_unit(b, prefix, "2", t, planes, 3, stride, 1, 1, ACT_RELU);
                t = mb_unit(b, prefix, "3", t, out_c, 1, 1, 1, 1, ACT_NONE);
            } else {
                t = mb_unit(b, prefix, "1", x, planes, 3, stride, 1, 1, ACT_RELU);
                t = mb_unit(b, prefix, "2", t, planes, 3, 1, 1, 1, ACT_NONE);
            }
            dnal_tensor *sc = x;
            if (stride != 1 || x->c != out_c) {
                char down[64];
                snprintf(down, sizeof down, "%s.downsample", prefix);
                sc = mb_unit(b, down, "", x, out_c, 1, stride, 1, 0, ACT_NONE);
            }
            x = residual(b, prefix, t, sc);
        }
    }
    mb_head(b, x, cfg->classes);
}
