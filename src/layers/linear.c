/* Fully connected layer (oneDNN inner product). A 4-D input is flattened in
 * NCHW order, so the plain weight (K, C, H, W) is PyTorch's (K, C*H*W).
 * Execution is shared with conv (weighted.c). */
#include "internal.h"

dnal_layer *dnal_linear_create(const dnal_ctx *ctx, const char *name, dnal_tensor *in,
                               dnal_tensor *out, int64_t out_features, int bias)
{
    weighted_layer *f = weighted_alloc(DNAL_LINEAR, name, in, out);
    dnal_layer *l = &f->base;
    int nd = in->ndims;
    int64_t wdims[4] = {out_features, in->c, in->h, in->w};
    int64_t flat[2] = {out_features, in->c * in->h * in->w};
    layer_param(l, "weight", DNAL_PARAM_WEIGHT, 2, flat);
    if (bias)
        layer_param(l, "bias", DNAL_PARAM_BIAS, 1, &out_features);

    int64_t odims[2] = {in->n, out_features};
    dnal_md wany = dnal_md_any(nd, wdims), wplain = dnal_md_plain(nd, wdims);
    dnal_md dany = dnal_md_any(2, odims), bmd = dnal_md_plain(1, &out_features);
    const dnal_md *bp = bias ? &bmd : NULL;
    /* the classifier runs in f32 whatever the activations' type: it is a
     * sliver of the work, and the loss reads f32 logits; a bf16 input is
     * read through an f32 copy (weighted.c's view) */
    dnal_md src = dnal_md_with_type(&in->md, dnnl_f32);
    f->fwd_pd = dnal_pd_ip_fwd(ctx, &src, &wany, bp, &dany);
    dnal_md dst = dnal_pd_md(f->fwd_pd, dnnl_query_dst_md, 0);
    if (in->need_grad)
        f->bwd_data_pd = dnal_pd_ip_bwd_data(ctx, &src, &wany, &dst, f->fwd_pd);
    f->bwd_wei_pd = dnal_pd_ip_bwd_weights(ctx, &src, &wany, bp, &dst, f->fwd_pd);
    weighted_finish(f, &wplain);
    return l;
}
