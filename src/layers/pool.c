/* Max pooling, average pooling (padding counted, PyTorch's default) and
 * global average pooling (pair.c runs them). */
#include "internal.h"

dnal_layer *dnal_pool_create(const dnal_ctx *ctx, const char *name, dnal_layer_kind kind,
                             dnal_tensor *in, dnal_tensor *out, int64_t kernel,
                             int64_t stride, int64_t pad)
{
    DNAL_ASSERT(kind == DNAL_MAXPOOL || kind == DNAL_AVGPOOL || kind == DNAL_GAP);
    dnal_layer *l = pair_layer_new(kind, name, in, out, 0);
    l->kernel = kernel;
    l->stride = stride;
    l->pad = pad;
    int64_t oh = (in->h + 2 * pad - kernel) / stride + 1;
    int64_t ow = (in->w + 2 * pad - kernel) / stride + 1;
    if (in->ndims != 4 || oh < 1 || ow < 1)
        dnal_fatal(DNAL_EXIT_USAGE, "%s: a %lldx%lld input is too small for pooling kernel %lld",
                   l->name, (long long)in->h, (long long)in->w, (long long)kernel);
    int64_t odims[4] = {in->n, in->c, oh, ow};
    dnal_md dlike = dnal_md_like(&in->md, 4, odims); /* its input's layout kind */
    dnal_pool_geom g = {kernel, stride, pad};
    dnnl_alg_kind_t alg = kind == DNAL_MAXPOOL ? dnnl_pooling_max : dnnl_pooling_avg_include_padding;
    dnal_pd fwd = dnal_pd_pool_fwd(ctx, alg, &in->md, &dlike, g);
    dnal_md dst = dnal_pd_md(fwd, dnnl_query_dst_md, 0);
    pair_layer_finish(l, fwd, dnal_pd_pool_bwd(ctx, alg, &in->md, &dst, g, fwd));
    return l;
}

dnal_layer *dnal_gap_create(const dnal_ctx *ctx, const char *name, dnal_tensor *in,
                            dnal_tensor *out)
{
    if (in->h != in->w)
        dnal_fatal(DNAL_EXIT_USAGE, "%s: global pooling needs a square input, got %lldx%lld",
                   name, (long long)in->h, (long long)in->w);
    return dnal_pool_create(ctx, name, DNAL_GAP, in, out, in->h, in->h, 0);
}
