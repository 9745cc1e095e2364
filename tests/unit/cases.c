#include <string.h>

#include "cases.h"
#include "harness.h"

static dnal_tensor *conv(dnal_net *net, dnal_tensor *x, int64_t out_c, int64_t k, int64_t s,
                         int64_t p, int64_t g, int bias)
{
    dnal_conv_cfg c = {.out_c = out_c, .kernel = k, .stride = s, .pad = p, .groups = g, .bias = bias};
    return dnal_net_conv(net, "conv", x, &c);
}
static dnal_tensor *b_conv3x3(dnal_net *net, dnal_tensor *x) { return conv(net, x, 24, 3, 1, 1, 1, 1); }
static dnal_tensor *b_conv_s2(dnal_net *net, dnal_tensor *x) { return conv(net, x, 16, 3, 2, 1, 1, 0); }
static dnal_tensor *b_conv1x1(dnal_net *net, dnal_tensor *x) { return conv(net, x, 40, 1, 1, 0, 1, 0); }
static dnal_tensor *b_conv_dw(dnal_net *net, dnal_tensor *x) { return conv(net, x, x->c, 3, 1, 1, x->c, 0); }
/* 7x7 depthwise: oneDNN 2.6 on AVX2 computes its weight gradient in NHWC */
static dnal_tensor *b_conv_dw7(dnal_net *net, dnal_tensor *x) { return conv(net, x, x->c, 7, 1, 3, x->c, 0); }
static dnal_tensor *b_conv_group(dnal_net *net, dnal_tensor *x) { return conv(net, x, 32, 3, 2, 1, 2, 1); }
static dnal_tensor *b_bn(dnal_net *net, dnal_tensor *x) { return dnal_net_bn(net, "bn", x); }
static dnal_tensor *b_relu(dnal_net *net, dnal_tensor *x) { return dnal_net_relu(net, "relu", x, 0); }
static dnal_tensor *b_relu6(dnal_net *net, dnal_tensor *x) { return dnal_net_relu(net, "relu6", x, 6); }
static dnal_tensor *b_maxpool(dnal_net *net, dnal_tensor *x)
{
    return dnal_net_pool(net, "pool", DNAL_MAXPOOL, x, 3, 2, 1);
}
static dnal_tensor *b_avgpool(dnal_net *net, dnal_tensor *x)
{
    return dnal_net_pool(net, "pool", DNAL_AVGPOOL, x, 3, 1, 1);
}
static dnal_tensor *b_avgpool2(dnal_net *net, dnal_tensor *x)
{
    return dnal_net_pool(net, "pool", DNAL_AVGPOOL, x, 2, 2, 0);
}
static dnal_tensor *b_gap(dnal_net *net, dnal_tensor *x) { return dnal_net_gap(net, "gap", x); }
static dnal_tensor *b_linear(dnal_net *net, dnal_tensor *x) { return dnal_net_linear(net, "fc", x, 10, 1); }
/* y = relu(x) + x: the input feeds two layers, so its gradient is a sum */
static dnal_tensor *b_add(dnal_net *net, dnal_tensor *x)
{
    return dnal_net_sum(net, "add", dnal_net_relu(net, "relu", x, 0), x);
}
static dnal_tensor *b_gate(dnal_net *net, dnal_tensor *x) { return dnal_net_gate(net, "gate", x); }
/* the chains a network fuses into one BN primitive (src/net/fuse.c) */
static dnal_tensor *b_bng_relu(dnal_net *net, dnal_tensor *x)
{
    return dnal_net_relu(net, "relu", dnal_net_gate(net, "gate", dnal_net_bn(net, "bn", x)), 0);
}
static dnal_tensor *b_bng_relu6(dnal_net *net, dnal_tensor *x)
{
    return dnal_net_relu(net, "relu6", dnal_net_gate(net, "gate", dnal_net_bn(net, "bn", x)), 6);
}
static dnal_tensor *b_bng(dnal_net *net, dnal_tensor *x)
{
    return dnal_net_gate(net, "gate", dnal_net_bn(net, "bn", x));
}
static dnal_tensor *b_bn_relu(dnal_net *net, dnal_tensor *x)
{
    return dnal_net_relu(net, "relu", dnal_net_bn(net, "bn", x), 0);
}
/* relu(relu(x) + x): the add and the ReLU after it fuse */
static dnal_tensor *b_add_relu(dnal_net *net, dnal_tensor *x)
{
    return dnal_net_relu(net, "relu2", b_add(net, x), 0);
}
static dnal_tensor *b_ce(dnal_net *net, dnal_tensor *x)
{
    dnal_net_softmax_ce(net, "ce", x);
    return NULL;
}
/* x + (1x1 conv of x, 6 channels) added at channels 1,3,4,8,9,15 (a compact branch) */
static dnal_tensor *b_scatter_add(dnal_net *net, dnal_tensor *x)
{
    static const int64_t idx[6] = {1, 3, 4, 8, 9, 15};
    dnal_tensor *b = conv(net, x, 6, 1, 1, 0, 1, 0);
    return dnal_net_scatter_add(net, "scatter", b, x, x->c, idx);
}
/* ResNet option A shortcut: x[:, :, ::2, ::2] zero-padded from 8 to 16 channels */
static dnal_tensor *b_shortcut_a(dnal_net *net, dnal_tensor *x)
{
    int64_t idx[64];
    for (int64_t k = 0; k < x->c; k++)
        idx[k] = x->c / 2 + k;
    dnal_tensor *t = dnal_net_pool(net, "subsample", DNAL_AVGPOOL, x, 1, 2, 0);
    return dnal_net_scatter_add(net, "pad", t, NULL, 2 * x->c, idx);
}
/* conv-BN-gate-ReLU-conv-BN-gate, + shortcut, ReLU: a ResNet basic block */
static dnal_tensor *b_block(dnal_net *net, dnal_tensor *x)
{
    dnal_conv_cfg c = {.out_c = x->c, .kernel = 3, .stride = 1, .pad = 1, .groups = 1};
    dnal_tensor *t = dnal_net_conv(net, "conv1", x, &c);
    t = dnal_net_bn(net, "bn1", t);
    t = dnal_net_gate(net, "gate1", t);
    t = dnal_net_relu(net, "relu1", t, 0);
    t = dnal_net_conv(net, "conv2", t, &c);
    t = dnal_net_bn(net, "bn2", t);
    t = dnal_net_gate(net, "gate2", t);
    t = dnal_net_sum(net, "add", t, x);
    return dnal_net_relu(net, "relu2", t, 0);
}

/* a classifier head: ReLU, 7x7 global pooling, linear, softmax-CE */
static dnal_tensor *b_head(dnal_net *net, dnal_tensor *x)
{
    x = dnal_net_gap(net, "gap", dnal_net_relu(net, "relu", x, 0));
    dnal_net_softmax_ce(net, "ce", dnal_net_linear(net, "fc", x, 10, 1));
    return NULL;
}

/* the first block of a CIFAR ResNet stage: stride-2 branch, padded shortcut */
static dnal_tensor *b_down_block(dnal_net *net, dnal_tensor *x)
{
    dnal_conv_cfg c1 = {.out_c = 2 * x->c, .kernel = 3, .stride = 2, .pad = 1, .groups = 1};
    dnal_conv_cfg c2 = {.out_c = 2 * x->c, .kernel = 3, .stride = 1, .pad = 1, .groups = 1};
    dnal_tensor *t = dnal_net_conv(net, "conv1", x, &c1);
    t = dnal_net_relu(net, "relu1", dnal_net_gate(net, "gate1", dnal_net_bn(net, "bn1", t)), 0);
    t = dnal_net_conv(net, "conv2", t, &c2);
    t = dnal_net_gate(net, "gate2", dnal_net_bn(net, "bn2", t));
    int64_t idx[64];
    for (int64_t k = 0; k < x->c; k++)
        idx[k] = x->c / 2 + k;
    dnal_tensor *s = dnal_net_pool(net, "subsample", DNAL_AVGPOOL, x, 1, 2, 0);
    s = dnal_net_scatter_add(net, "pad", s, NULL, 2 * x->c, idx);
    return dnal_net_relu(net, "relu2", dnal_net_sum(net, "add", t, s), 0);
}

const layer_case layer_cases[] = {
    {"conv3x3", 4, 2, 16, 6, 6, "native", b_conv3x3, 1, 0, 0},
    {"conv_s2_nchw", 4, 2, 3, 7, 7, "nchw", b_conv_s2, 1, 0, 0},
    {"conv1x1", 4, 2, 24, 5, 5, "native", b_conv1x1, 1, 0, 0},
    {"conv_dw", 4, 2, 32, 6, 6, "native", b_conv_dw, 1, 0, 0},
    {"conv_dw7", 4, 2, 16, 8, 8, "native", b_conv_dw7, 0, 0, 0},
    {"conv_group", 4, 2, 16, 7, 7, "native", b_conv_group, 1, 0, 0},
    {"bn_train", 4, 3, 20, 4, 4, "native", b_bn, 1, 0, 0},
    {"bn_infer", 4, 2, 20, 4, 4, "native", b_bn, 1, 0, 0},
    /* 13 channels: in NHWC dnal's own kernel (oneDNN's JIT needs a multiple of 4) */
    {"bn_odd", 4, 3, 13, 5, 3, "native", b_bn, 0, 0, 0},
    {"relu", 4, 2, 20, 4, 4, "native", b_relu, 1, 0, 0},
    {"relu6", 4, 2, 16, 4, 4, "native", b_relu6, 1, 0, 0},
    {"maxpool", 4, 2, 16, 7, 7, "native", b_maxpool, 1, 0, 0},
    {"avgpool", 4, 2, 16, 5, 5, "native", b_avgpool, 1, 0, 0},
    {"avgpool2", 4, 2, 16, 6, 6, "native", b_avgpool2, 1, 0, 0},
    {"gap", 4, 2, 20, 4, 4, "native", b_gap, 1, 0, 0},
    {"linear", 4, 3, 32, 2, 2, "native", b_linear, 1, 0, 0},
    {"linear_2d", 2, 4, 12, 1, 1, "nc", b_linear, 0, 0, 0},
    {"add", 4, 2, 16, 3, 3, "native", b_add, 1, 0, 0},
    {"gate_search", 4, 2, 20, 4, 4, "native", b_gate, 1, 0, 0},
    {"gate_pruned", 4, 2, 20, 4, 4, "native", b_gate, 1, 0, 0},
    {"gate_off", 4, 2, 20, 4, 4, "native", b_gate, 1, 0, 0},
    {"gate_nchw", 4, 2, 5, 3, 3, "nchw", b_gate, 0, 0, 0},
    {"bng_relu_b1", 4, 3, 20, 4, 4, "native", b_bng_relu, 1, 1, 1},
    {"bng_relu_b10", 4, 3, 20, 4, 4, "native", b_bng_relu, 1, 1, 1},
    {"bng_relu_b1000", 4, 3, 20, 4, 4, "native", b_bng_relu, 1, 1, 1},
    {"bng_relu_pruned", 4, 3, 20, 4, 4, "native", b_bng_relu, 1, 1, 1},
    {"bng_relu_off", 4, 3, 20, 4, 4, "native", b_bng_relu, 1, 1, 1},
    {"bng_relu_infer", 4, 2, 20, 4, 4, "native", b_bng_relu, 1, 1, 1},
    {"bng_relu6", 4, 3, 16, 4, 4, "native", b_bng_relu6, 1, 1, 0},
    {"bng", 4, 3, 20, 4, 4, "native", b_bng, 1, 1, 0},
    {"bn_relu", 4, 3, 20, 4, 4, "native", b_bn_relu, 1, 0, 1},
    /* 13 channels: padded in blocked layouts, dnal's own BN kernel in NHWC */
    {"bng_relu_odd", 4, 3, 13, 5, 3, "native", b_bng_relu, 1, 1, 1},
    {"add_relu", 4, 2, 16, 3, 3, "native", b_add_relu, 1, 0, 1},
    {"softmax_ce", 2, 8, 10, 1, 1, "nc", b_ce, 1, 0, 0},
    {"scatter_add", 4, 2, 16, 4, 4, "native", b_scatter_add, 1, 0, 0},
    {"shortcut_a", 4, 2, 8, 6, 6, "native", b_shortcut_a, 1, 0, 0},
    {"basic_block", 4, 2, 16, 8, 8, "native", b_block, 1, 2, 2},
    {"down_block", 4, 2, 16, 8, 8, "native", b_down_block, 1, 2, 2},
    {"head", 4, 8, 64, 7, 7, "native", b_head, 1, 0, 0},
    /* finite differences need few outputs: float32 rounding of the BN-coupled loss */
    {"basic_block_small", 4, 2, 16, 5, 5, "native", b_block, 0, 2, 2},
};
const int n_layer_cases = sizeof layer_cases / sizeof layer_cases[0];

const layer_case *case_find(const char *name)
{
    for (int i = 0; i < n_layer_cases; i++)
        if (!strcmp(layer_cases[i].name, name))
            return &layer_cases[i];
    return NULL;
}

dnal_net *case_net(const dnal_ctx *ctx, const layer_case *lc, const char *layout_override)
{
    return case_net_fuse(ctx, lc, layout_override, 1);
}

dnal_net *case_net_fuse(const dnal_ctx *ctx, const layer_case *lc, const char *layout_override,
                        int fuse)
{
    int64_t dims[4] = {lc->n, lc->c, lc->h, lc->w};
    const char *layout = layout_override ? layout_override : lc->layout;
    dnal_md md = lc->ndims == 2 ? dnal_md_plain(2, dims) : h_md(ctx, dims, layout);
    if (lc->ndims == 4) /* the layer reads activations of the context's type (2-D: logits, f32) */
        md = dnal_md_with_type(&md, ctx->dtype);
    dnal_net *net = dnal_net_create_md(ctx, &md);
    if (!strcmp(layout, "nhwc")) /* convolutions write channels last too */
        net->layout = dnal_md_channels_last_kind(ctx);
    net->input->need_grad = 1;
    net->no_fuse = !fuse;
    lc->build(net, net->input);
    dnal_net_finalize(net);
    return net;
}
