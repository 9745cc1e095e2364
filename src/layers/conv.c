/* 2-D convolution (stride, padding, groups incl. depthwise, optional bias).
 *
 * Activation layouts: the forward reads its source in the layout the
 * producer wrote (the input tensor's md, exactly) and writes its
 * destination in the layout kind the owner asks for (the network's one
 * activation layout, dnal_net.layout), so no reorder runs between layers.
 * Where oneDNN has only a reference kernel (or none) for the producer's
 * layout, e.g. a dense 3x3 conv over 13 channels in nChw16c on AVX-512, the
 * forward reads a reordered copy in another layout (conv_fwd below); the
 * layer says so in src_reorder and the network counts it (and
 * dnal_net_build then tries channels last). Weights use format any and are
 * reordered from the plain flat buffer. Backward descriptors are hinted by
 * the forward one (conv_bwd below). Execution is shared with linear
 * (weighted.c). */
#include "internal.h"

/* md with the context's element type (activations and working weights) */
static dnal_md typed(const dnal_ctx *ctx, dnal_md md)
{
    return dnal_md_with_type(&md, ctx->dtype);
}

/* A backward primitive reading the forward's layouts, unless oneDNN has only
 * a reference kernel for them: then the layouts it picks itself, channels
 * last, or plain ones (its GEMM kernel), the first that is not a reference
 * kernel. Channels last comes before plain for the depthwise 5x5 and 7x7
 * backward-weights of the supernet: oneDNN 2.6 on AVX2 has a JIT kernel
 * for them only in NHWC, 20-40x faster than its GEMM one in NCHW. */
static dnal_pd conv_bwd(const dnal_ctx *ctx, int weights, dnal_pd fwd, const dnal_md *src,
                        const dnal_md *dst, const dnal_md *wany, const dnal_md *bias,
                        dnal_conv_geom geom)
{
    dnal_md sany = typed(ctx, dnal_md_any(4, src->dims)), dany = typed(ctx, dnal_md_any(4, dst->dims));
    dnal_md plain_src = typed(ctx, dnal_md_plain(4, src->dims));
    dnal_md plain_dst = typed(ctx, dnal_md_plain(4, dst->dims));
    dnal_md last_src = typed(ctx, dnal_md_channels_last(src->dims));
    dnal_md last_dst = typed(ctx, dnal_md_channels_last(dst->dims));
    const dnal_md *tries[4][2] = {{src, dst},
                                  {&sany, weights ? dst : &dany},
                                  {&last_src, &last_dst},
                                  {&plain_src, &plain_dst}};
    dnal_pd pd = NULL;
    for (int i = 0; i < 4; i++) {
        dnal_pd next = weights
                           ? dnal_pd_conv_bwd_weights(ctx, tries[i][0], wany, bias, tries[i][1], geom, fwd)
                           : dnal_pd_conv_bwd_data(ctx, tries[i][0], wany, tries[i][1], geom, fwd);
        if (pd)
            dnnl_primitive_desc_destroy(pd);
        pd = next;
        if (!dnal_pd_is_reference(pd))
            break;
    }
    return pd;
}

/* The forward writing `dst` (the layout kind `layout`) and reading `in`: in
 * the layout its producer wrote; where oneDNN has only a reference kernel
 * or none for that, in the kind `layout` (oneDNN 2.6 picks a reference
 * kernel for a source of format any with an NHWC destination), or in the
 * layout it picks itself; the first that is not a reference kernel. */
static dnal_pd conv_fwd(const dnal_ctx *ctx, const dnal_tensor *in, const dnal_md *layout,
                        const dnal_md *wany, const dnal_md *bias, const dnal_md *dst,
                        dnal_conv_geom geom)
{
    int64_t dims[4] = {in->n, in->c, in->h, in->w};
    dnal_md srcs[3] = {in->md, dnal_md_like(layout, 4, dims), typed(ctx, dnal_md_any(4, dims))};
    dnal_pd first = NULL;
    for (int i = 0; i < 3; i++) {
        dnal_pd pd = dnal_pd_conv_fwd_try(ctx, &srcs[i], wany, bias, dst, geom);
        if (pd && !dnal_pd_is_reference(pd)) {
            if (first)
                dnnl_primitive_desc_destroy(first);
            return pd;
        }
        if (!first)
            first = pd;
        else if (pd)
            dnnl_primitive_desc_destroy(pd);
    }
    return first ? first : dnal_pd_conv_fwd(ctx, &srcs[2], wany, bias, dst, geom);
}

dnal_layer *dnal_conv_create(const dnal_ctx *ctx, const char *name, dnal_tensor *in,
                             dnal_tensor *out, const dnal_conv_cfg *cfg, const dnal_md *layout)
{
    weighted_layer *c = weighted_alloc(DNAL_CONV, name, in, out);
    dnal_layer *l = &c->base;
    int64_t g = cfg->groups > 0 ? cfg->groups : 1, k = cfg->kernel;
    if (in->ndims != 4 || in->c % g || cfg->out_c % g)
        dnal_fatal(DNAL_EXIT_USAGE, "%s: %lld input and %lld output channels do not split into %lld groups",
                   l->name, (long long)in->c, (long long)cfg->out_c, (long long)g);
    int64_t oh = (in->h + 2 * cfg->pad - k) / cfg->stride + 1;
    int64_t ow = (in->w + 2 * cfg->pad - k) / cfg->stride + 1;
    if (oh < 1 || ow < 1)
        dnal_fatal(DNAL_EXIT_USAGE, "%s: a %lldx%lld input is too small for kernel %lld",
                   l->name, (long long)in->h, (long long)in->w, (long long)k);
    l->kernel = k;
    l->stride = cfg->stride;
    l->pad = cfg->pad;
    l->groups = g;
    dnal_conv_geom geom = {cfg->stride, cfg->pad};

    /* PyTorch's weight (O, I/g, k, k) is oneDNN's goihw (g, O/g, I/g, k, k) */
    int64_t wdims[4] = {cfg->out_c, in->c / g, k, k};
    int64_t gdims[5] = {g, cfg->out_c / g, in->c / g, k, k};
    int wnd = g == 1 ? 4 : 5;
    const int64_t *pdims = g == 1 ? wdims : gdims;
    layer_param(l, "weight", DNAL_PARAM_WEIGHT, 4, wdims);
    if (cfg->bias)
        layer_param(l, "bias", DNAL_PARAM_BIAS, 1, &cfg->out_c);

    int64_t odims[4] = {in->n, cfg->out_c, oh, ow};
    /* the weights in the context's type (a bf16 working copy of the f32
     * parameters, reordered at each forward); their gradient always f32 */
    dnal_md dwany = dnal_md_any(wnd, pdims), wany = typed(ctx, dwany);
    dnal_md dlayout = dnal_md_like(layout, 4, odims);
    dnal_md wplain = dnal_md_plain(wnd, pdims);
    dnal_md bmd = dnal_md_plain(1, &cfg->out_c);
    const dnal_md *bias = cfg->bias ? &bmd : NULL;

    c->fwd_pd = conv_fwd(ctx, in, layout, &wany, bias, &dlayout, geom);
    dnal_md src = dnal_pd_md(c->fwd_pd, dnnl_query_src_md, 0);
    dnal_md dst = dnal_pd_md(c->fwd_pd, dnnl_query_dst_md, 0);
    if (in->need_grad) /* the network input needs none */
        c->bwd_data_pd = conv_bwd(ctx, 0, c->fwd_pd, &src, &dst, &wany, NULL, geom);
    c->bwd_wei_pd = conv_bwd(ctx, 1, c->fwd_pd, &src, &dst, &dwany, bias, geom);
    weighted_finish(c, &wplain);
    return l;
}
