/* The activation layout of a network.
 *
 * Every tensor between layers has one layout kind, dnal_net.layout: each
 * convolution writes it and reads its input as the producer wrote it (see
 * src/layers/conv.c), and the layers between convolutions keep it. The
 * candidates, in order:
 *  1. the layout oneDNN's convolutions pick on this CPU (ctx->conv_layout:
 *     channel-blocked, nChw16c with AVX-512, nChw8c with AVX2 and SSE4.1);
 *     its kernels are the fastest for the widths of the published networks,
 *     but oneDNN 2.6 has only reference kernels for some shapes in it (a
 *     dense 3x3 conv over 5 or 13 channels in nChw16c on AVX-512, widths
 *     not a multiple of 8 in nChw8c on SSE4.1), where the convolution would
 *     read a reordered copy or run 1000x slower;
 *  2. channels last (NHWC), for which oneDNN 2.6 has a JIT or GEMM forward
 *     for every convolution shape on every x86-64 ISA measured (AVX-512,
 *     AVX2, SSE4.1): what pruned networks with odd widths need.
 * A network is built in the first; if that leaves a reference kernel or a
 * reorder between layers, it is built in the second, and the one with fewer
 * (reference kernels first, then reorders; the first on a tie) is kept.
 * A params_only or count_only network (nothing runs) is built once, in the
 * first. */
#include "dnal/net.h"

typedef struct layout_misses {
    int reference, reorders;
} layout_misses;

static layout_misses misses(const dnal_net *net)
{
    return (layout_misses){net->n_reference, net->n_reorders};
}

static int fewer(layout_misses a, layout_misses b)
{
    return a.reference != b.reference ? a.reference < b.reference : a.reorders < b.reorders;
}

static dnal_net *build_in(const dnal_ctx *ctx, const int64_t input[4], const dnal_md *layout,
                          dnal_net_build_fn fn, void *arg)
{
    dnal_net *net = dnal_net_create(ctx, input[0], input[1], input[2], input[3]);
    net->layout = *layout;
    fn(net, arg);
    return net;
}

dnal_net *dnal_net_build(const dnal_ctx *ctx, const int64_t input[4], dnal_net_build_fn fn,
                         void *arg)
{
    dnal_md layouts[2] = {ctx->conv_layout, dnal_md_channels_last_kind(ctx)};
    int n = dnal_md_equal(&layouts[0], &layouts[1]) || ctx->params_only || ctx->count_only ? 1 : 2, best = 0, last = 0;
    dnal_net *net = build_in(ctx, input, &layouts[0], fn, arg);
    layout_misses best_misses = misses(net), none = {0, 0};
    for (int i = 1; i < n && fewer(none, best_misses); i++) {
        dnal_net_destroy(net);
        net = build_in(ctx, input, &layouts[i], fn, arg);
        last = i;
        if (fewer(misses(net), best_misses)) {
            best = i;
            best_misses = misses(net);
        }
    }
    if (best != last) { /* the last call of fn builds the network returned */
        dnal_net_destroy(net);
        net = build_in(ctx, input, &layouts[best], fn, arg);
    }
    dnal_net_finalize(net);
    return net;
}

int64_t dnal_net_channel_block(const dnal_net *net)
{
    int64_t block = dnal_layout_channel_block(&net->layout);
    /* channels last: oneDNN's kernels compute output channels in vectors as
     * wide as the block of its blocked layout (a 3x3 conv over 48 channels
     * in NHWC on AVX-512 costs about the same for 1 to 16 outputs and steps
     * up at 17 and 33), so the same block */
    return block > 1 ? block : dnal_layout_channel_block(&net->ctx->conv_layout);
}
