/* Activation layouts between layers, on whatever CPU (and ISA cap) the test
 * runs: every layer's forward reads exactly the layout its producer wrote,
 * except readers of the network input (the user's plain NCHW data), and the
 * network counts every layer that reads a reordered copy instead. Networks
 * are built through dnal_net_build, the path the models take; which layout
 * it picks is this CPU's business and is not asserted. */
#include <string.h>

#include "dnal/net.h"
#include "tap.h"

typedef enum { STACK, RESIDUAL, DOWN, DEPTHWISE, AFTER_INPUT } shape_kind;

typedef struct shape {
    shape_kind kind;
    int64_t c_in, width, hw, kernel; /* kernel: depthwise only */
} shape;

static dnal_tensor *conv(dnal_net *net, const char *name, dnal_tensor *x, int64_t out_c,
                         int64_t k, int64_t stride, int64_t groups)
{
    dnal_conv_cfg c = {.out_c = out_c, .kernel = k, .stride = stride, .pad = k / 2,
                       .groups = groups};
    return dnal_net_conv(net, name, x, &c);
}

/* conv-BN-ReLU-conv-BN-ReLU */
static dnal_tensor *stack(dnal_net *net, dnal_tensor *x, int64_t width)
{
    x = dnal_net_relu(net, "relu1", dnal_net_bn(net, "bn1", conv(net, "conv1", x, width, 3, 1, 1)), 0);
    return dnal_net_relu(net, "relu2", dnal_net_bn(net, "bn2", conv(net, "conv2", x, width, 3, 1, 1)), 0);
}

/* a ResNet basic block with gates; stride 2: option-A shortcut (pooling, scatter-add) */
static dnal_tensor *block(dnal_net *net, dnal_tensor *x, int64_t width, int64_t stride)
{
    dnal_tensor *t = conv(net, "b.conv1", x, width, 3, stride, 1);
    t = dnal_net_relu(net, "b.relu1", dnal_net_gate(net, "b.gate1", dnal_net_bn(net, "b.bn1", t)), 0);
    t = dnal_net_gate(net, "b.gate2", dnal_net_bn(net, "b.bn2", conv(net, "b.conv2", t, width, 3, 1, 1)));
    if (stride > 1) {
        int64_t idx[64];
        for (int64_t k = 0; k < x->c; k++)
            idx[k] = (width - x->c) / 2 + k;
        x = dnal_net_pool(net, "b.subsample", DNAL_AVGPOOL, x, 1, stride, 0);
        x = dnal_net_scatter_add(net, "b.pad", x, NULL, width, idx);
    }
    return dnal_net_relu(net, "b.relu2", dnal_net_sum(net, "b.add", t, x), 0);
}

/* an inverted residual: 1x1 expand, k x k depthwise, 1x1 project */
static dnal_tensor *inverted(dnal_net *net, dnal_tensor *x, int64_t width, int64_t k)
{
    dnal_tensor *t = dnal_net_relu(net, "e.relu", dnal_net_bn(net, "e.bn", conv(net, "expand", x, width, 1, 1, 1)), 6);
    t = dnal_net_relu(net, "d.relu", dnal_net_bn(net, "d.bn", conv(net, "dw", t, width, k, 1, width)), 6);
    return dnal_net_bn(net, "p.bn", conv(net, "project", t, x->c, 1, 1, 1));
}

static void add_layers(dnal_net *net, void *arg)
{
    const shape *s = arg;
    dnal_tensor *x = net->input;
    switch (s->kind) {
    case STACK:
        x = stack(net, x, s->width);
        break;
    case RESIDUAL:
        x = block(net, stack(net, x, s->width), s->width, 1);
        break;
    case DOWN:
        x = block(net, stack(net, x, s->width), 2 * s->width, 2);
        break;
    case DEPTHWISE:
        x = inverted(net, stack(net, x, s->width), 3 * s->width, s->kernel);
        break;
    case AFTER_INPUT: /* a conv reading a plain tensor that a layer wrote */
        x = conv(net, "conv", dnal_net_relu(net, "relu", x, 0), s->width, 3, 1, 1);
        break;
    }
    x = dnal_net_linear(net, "fc", dnal_net_gap(net, "gap", x), 10, 1);
    dnal_net_softmax_ce(net, "loss", x);
}

/* Layers reading an input in another layout than its producer wrote
 * (network input excepted); the first one's description in `first`. */
static int count_rereads(const dnal_net *net, char *first, size_t len)
{
    int n = 0;
    char read[32], wrote[32];
    for (int i = 0; i < net->n_layers; i++) {
        const dnal_layer *l = net->layers[i];
        for (int k = 0; k < l->n_in; k++) {
            dnal_md src = dnal_layer_src_md(l, k);
            if (l->in[k] == net->input || dnal_md_equal(&src, &l->in[k]->md))
                continue;
            if (n++ == 0)
                snprintf(first, len, " (first: %s reads %s, its producer wrote %s)", l->name,
                         dnal_md_layout_str(&src, read, sizeof read),
                         dnal_md_layout_str(&l->in[k]->md, wrote, sizeof wrote));
        }
    }
    return n;
}

static int count_flagged(const dnal_net *net)
{
    int n = 0;
    for (int i = 0; i < net->n_layers; i++)
        n += net->layers[i]->src_reorder && net->layers[i]->in[0] != net->input;
    return n;
}

static void check(const dnal_ctx *ctx, const char *what, shape s, int expect_none)
{
    int64_t input[4] = {8, s.c_in, s.hw, s.hw};
    dnal_net *net = dnal_net_build(ctx, input, add_layers, &s);
    char first[160] = "", layout[32];
    int rereads = count_rereads(net, first, sizeof first);
    dnal_md_layout_str(&net->layout, layout, sizeof layout);
    tap_ok(rereads == net->n_reorders && count_flagged(net) == rereads,
           "%s: %d layers read another layout than their producer wrote, %d counted "
           "(net layout %s, %d reference primitives)%s",
           what, rereads, net->n_reorders, layout, net->n_reference, first);
    if (expect_none)
        tap_ok(net->n_reorders == 0, "%s: no reorder between layers (%d)", what, net->n_reorders);
    dnal_net_destroy(net);
}

/* dnal_md_like gives a layout kind the strides oneDNN gives its format tag,
 * also from and to dims of extent 1 */
static void check_md_like(void)
{
    static const char *const tags[] = {"nchw", "nhwc", "nChw8c", "nChw16c"};
    static const int64_t from[3][4] = {{2, 32, 8, 8}, {2, 1, 8, 8}, {2, 32, 1, 1}};
    static const int64_t to[5][4] = {{8, 13, 5, 5}, {4, 1, 7, 7}, {4, 16, 1, 1}, {1, 3, 2, 9},
                                     {3, 40, 1, 6}};
    int bad = 0, total = 0;
    char s1[32], s2[32], msg[128] = "";
    for (int t = 0; t < 4; t++)
        for (int f = 0; f < 3; f++)
            for (int d = 0; d < 5; d++, total++) {
                dnal_md kind = dnal_md_tag4(from[f], tags[t]);
                dnal_md got = dnal_md_like(&kind, 4, to[d]), want = dnal_md_tag4(to[d], tags[t]);
                if (!dnal_md_equal(&got, &want) && bad++ == 0)
                    snprintf(msg, sizeof msg, " (first: %s from C=%lld H=%lld gave %s, want %s)",
                             tags[t], (long long)from[f][1], (long long)from[f][2],
                             dnal_md_layout_str(&got, s1, sizeof s1),
                             dnal_md_layout_str(&want, s2, sizeof s2));
            }
    tap_ok(bad == 0, "dnal_md_like matches oneDNN's format tags: %d of %d differ%s", bad, total,
           msg);
}

int main(void)
{
    dnal_ctx *ctx = dnal_ctx_create();
    check_md_like();
    check(ctx, "C=3 width 16 (image input)", (shape){STACK, 3, 16, 16, 0}, 1);
    check(ctx, "C=16 width 64", (shape){STACK, 16, 64, 8, 0}, 1);
    check(ctx, "C=16 width 13 (pruned)", (shape){STACK, 16, 13, 8, 0}, 1);
    check(ctx, "C=13 width 13", (shape){STACK, 13, 13, 8, 0}, 1);
    check(ctx, "C=1 width 16 (Fashion-MNIST stem)", (shape){STACK, 1, 16, 12, 0}, 1);
    check(ctx, "residual block, width 16", (shape){RESIDUAL, 3, 16, 8, 0}, 1);
    check(ctx, "residual block, width 13", (shape){RESIDUAL, 3, 13, 8, 0}, 1);
    check(ctx, "stride-2 block, 13 -> 26 (option-A shortcut)", (shape){DOWN, 3, 13, 8, 0}, 1);
    check(ctx, "depthwise 5x5 over 48", (shape){DEPTHWISE, 3, 16, 8, 5}, 1);
    check(ctx, "depthwise 7x7 over 39", (shape){DEPTHWISE, 3, 13, 8, 7}, 1);
    /* whether a conv reads a plain tensor a layer wrote is this CPU's business */
    check(ctx, "conv after ReLU on the plain input", (shape){AFTER_INPUT, 16, 16, 8, 0}, 0);
    dnal_ctx_destroy(ctx);
    return tap_done();
}
