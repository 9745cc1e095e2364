/* ReLU and ReLU6 (clip to [0, 6]) as oneDNN eltwise primitives (pair.c
 * runs them). */
#include "internal.h"

dnal_layer *dnal_relu_create(const dnal_ctx *ctx, const char *name, dnal_tensor *in,
                             dnal_tensor *out, float cap)
{
    dnal_layer *l = pair_layer_new(cap > 0 ? DNAL_RELU6 : DNAL_RELU, name, in, out, 1);
    /* clip_v2 has PyTorch's derivative for ReLU6: 1 strictly inside (0, 6) */
    dnnl_alg_kind_t alg = cap > 0 ? dnnl_eltwise_clip_v2 : dnnl_eltwise_relu;
    float alpha = 0.0f, beta = cap > 0 ? cap : 0.0f;
    dnal_pd fwd = dnal_pd_eltwise_fwd(ctx, alg, &in->md, alpha, beta);
    pair_layer_finish(l, fwd, dnal_pd_eltwise_bwd(ctx, alg, &in->md, alpha, beta, fwd));
    return l;
}
