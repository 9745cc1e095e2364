/* ReLU and ReLU6 (clip to [0, 6]) as oneDNN eltwise primitives. */
#include <stdlib.h>

#include "internal.h"

typedef struct relu_layer {
    dnal_layer base;
    dnal_pd fwd_pd, bwd_pd;
    exec_t fwd, bwd;
} relu_layer;

static void relu_bind(dnal_layer *l, const dnal_ctx *ctx, const dnal_buffers *b)
{
    relu_layer *r = (relu_layer *)l;
    exec_init(&r->fwd, ctx, r->fwd_pd, b->scratch);
    exec_arg(&r->fwd, DNNL_ARG_SRC, l->in[0]->mem);
    exec_arg(&r->fwd, DNNL_ARG_DST, l->out->mem);
    if (l->in_diff[0]) {
        exec_init(&r->bwd, ctx, r->bwd_pd, b->scratch);
        exec_arg(&r->bwd, DNNL_ARG_SRC, l->in[0]->mem);
        exec_arg(&r->bwd, DNNL_ARG_DIFF_DST, l->out->diff);
        exec_arg(&r->bwd, DNNL_ARG_DIFF_SRC, l->in_diff[0]);
    }
}

static void relu_forward(dnal_layer *l, const dnal_ctx *ctx, const dnal_pass *p)
{
    (void)p;
    exec_run(&((relu_layer *)l)->fwd, ctx);
}

static void relu_backward(dnal_layer *l, const dnal_ctx *ctx, const dnal_pass *p)
{
    (void)p;
    if (l->in_diff[0])
        exec_run(&((relu_layer *)l)->bwd, ctx);
}

static void relu_destroy(dnal_layer *l)
{
    relu_layer *r = (relu_layer *)l;
    exec_free(&r->fwd);
    exec_free(&r->bwd);
    dnnl_primitive_desc_destroy(r->fwd_pd);
    dnnl_primitive_desc_destroy(r->bwd_pd);
    free(r);
}

static const dnal_layer_ops relu_ops = {relu_bind, relu_forward, relu_backward, relu_destroy};

dnal_layer *dnal_relu_create(const dnal_ctx *ctx, const char *name, dnal_tensor *in,
                             dnal_tensor *out, float cap)
{
    relu_layer *r = calloc(1, sizeof *r);
    dnal_layer *l = &r->base;
    DNAL_ASSERT(r);
    layer_init(l, &relu_ops, cap > 0 ? DNAL_RELU6 : DNAL_RELU, name);
    l->n_in = 1;
    l->in[0] = in;
    l->out = out;
    /* clip_v2 has PyTorch's derivative for ReLU6: 1 strictly inside (0, 6) */
    dnnl_alg_kind_t alg = cap > 0 ? dnnl_eltwise_clip_v2 : dnnl_eltwise_relu;
    float alpha = 0.0f, beta = cap > 0 ? cap : 0.0f;
    r->fwd_pd = dnal_pd_eltwise_fwd(ctx, alg, &in->md, alpha, beta);
    r->bwd_pd = dnal_pd_eltwise_bwd(ctx, alg, &in->md, alpha, beta, r->fwd_pd);
    dnal_md dst = dnal_pd_md(r->fwd_pd, dnnl_query_dst_md, 0);
    tensor_set(out, &dst);
    l->fwd_pd = r->fwd_pd;
    layer_pd(l, r->fwd_pd);
    layer_pd(l, r->bwd_pd);
    return l;
}
