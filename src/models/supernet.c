/* The ProxylessNAS-style supernet (docs/design.md, "The method"; Cai et al. 2019,
 * mobile search space). Stem 3x3 conv 32 stride 2 (BN, ReLU6, no gate); a
 * fixed MBConv expand-1 block to 16 channels gated as in MobileNetV2; then
 * searchable edges in stages (channels, edges, first stride) = (24,4,2),
 * (40,4,2), (80,4,2), (96,4,1), (192,4,2), (320,1,1). Each edge holds six
 * MBConv candidates {k = 3,5,7} x {expand 3, 6}, named edges.N.kKeE: 1x1
 * expansion (conv, BN, ReLU6; the depthwise gate governs its channels),
 * kxk depthwise (conv, BN, gate, ReLU6), 1x1 projection (conv, BN, gate).
 * The edge output is the sum of the six candidate outputs (no softmax, no
 * sampling: edges.N.sum2 .. sum6), plus the identity shortcut (edges.N.add)
 * when the stride is 1 and the width is kept. Final 1x1 conv to 1280 (BN,
 * gate, ReLU6), global pooling, classifier.
 *
 * The two gates of a candidate form one removable branch (layer->branch):
 * pruning removes the candidate when its projection gates all close (its
 * output is then exactly zero), and an edge without shortcut keeps at least
 * one candidate (layer->branch_set). Small images (< 64 pixels: CIFAR,
 * Fashion-MNIST): stride-1 stem and stride 1 in the first searchable stage,
 * as the CIFAR MobileNetV2. Channels are scaled by the width and rounded to
 * multiples of 8. */
#include <math.h>
#include <stdio.h>

#include "builder.h"

static void mark(dnal_net *net, dnal_tensor *t, int branch, int set)
{
    dnal_layer *g = net->layers[t->gate];
    DNAL_ASSERT(g->kind == DNAL_GATE);
    g->branch = branch;
    g->branch_set = set;
}

void proxyless_supernet(mb *b, const dnal_model_cfg *cfg, int variant)
{
    static const int plan[6][3] = {/* c, edges, first stride */
                                   {24, 4, 2}, {40, 4, 2}, {80, 4, 2},
                                   {96, 4, 1}, {192, 4, 2}, {320, 1, 1}};
    static const int kernels[3] = {3, 5, 7}, expands[2] = {3, 6};
    int imagenet = cfg->image_size >= 64;
    double w = cfg->width;
    char prefix[48];
    dnal_net *net = b->net;
    dnal_tensor *x = mb_unit(b, "stem", "", net->input, mb_divisible8(32 * w), 3, imagenet ? 2 : 1, 1,
                             0, ACT_RELU6);
    /* the fixed first block: depthwise 3x3 and projection to 16, both gated */
    x = mb_unit(b, "first", "_dw", x, x->c, 3, 1, x->c, 1, ACT_RELU6);
    x = mb_unit(b, "first", "_project", x, mb_divisible8(16 * w), 1, 1, 1, 1, ACT_NONE);
    int edge = 0, branch = 0;
    for (int s = 0; s < 6; s++) {
        int64_t c = mb_divisible8(plan[s][0] * w);
        int stride0 = (!imagenet && s == 0) ? 1 : plan[s][2];
        for (int i = 0; i < plan[s][1]; i++) {
            int64_t stride = i == 0 ? stride0 : 1, in_c = x->c;
            int shortcut = stride == 1 && in_c == c;
            edge++;
            dnal_tensor *sum = NULL;
            for (int k = 0; k < 3; k++)
                for (int e = 0; e < 2; e++) {
                    int64_t kernel = kernels[k];
                    int64_t hidden = (int64_t)llround((double)in_c * expands[e]);
                    snprintf(prefix, sizeof prefix, "edges.%d.k%de%d", edge, kernels[k],
                             expands[e]);
                    branch++;
                    dnal_tensor *y = mb_unit(b, prefix, "_expand", x, hidden, 1, 1, 1, 0,
                                             ACT_RELU6);
                    y = mb_unit(b, prefix, "_dw", y, hidden, kernel, stride, hidden, 1, ACT_RELU6);
                    mark(net, y, branch, shortcut ? 0 : edge);
                    y = mb_unit(b, prefix, "_project", y, c, 1, 1, 1, 1, ACT_NONE);
                    mark(net, y, branch, shortcut ? 0 : edge);
                    sum = sum ? dnal_net_sum(net, mb_name(b, "edges.%d.sum%d", edge, 2 * k + e + 1),
                                             sum, y)
                              : y;
                }
            if (shortcut)
                sum = dnal_net_residual(net, mb_name(b, "edges.%d.add", edge), sum, x);
            x = sum;
        }
    }
    int64_t last = mb_divisible8(1280 * (w > 1.0 ? w : 1.0));
    x = mb_unit(b, "last", "", x, last, 1, 1, 1, 1, ACT_RELU6);
    mb_head(b, x, cfg->classes);
}
