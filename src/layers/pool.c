/* Max pooling, average pooling (padding counted, PyTorch's default) and
 * global average pooling. */
#include <stdlib.h>

#include "internal.h"

typedef struct pool_layer {
    dnal_layer base;
    dnal_pd fwd_pd, bwd_pd;
    size_t ws_off;
    dnnl_memory_t ws;      /* max pooling: where the maxima were */
    exec_t fwd, bwd;
} pool_layer;

static void pool_bind(dnal_layer *l, const dnal_ctx *ctx, const dnal_buffers *b)
{
    pool_layer *q = (pool_layer *)l;
    exec_init(&q->fwd, ctx, q->fwd_pd, b->scratch);
    exec_arg(&q->fwd, DNNL_ARG_SRC, l->in[0]->mem);
    exec_arg(&q->fwd, DNNL_ARG_DST, l->out->mem);
    dnal_md wsmd = dnal_pd_md(q->fwd_pd, dnnl_query_workspace_md, 0);
    if (dnal_md_bytes(&wsmd) > 0) {
        q->ws = dnal_memory(ctx, &wsmd, b->priv + q->ws_off);
        exec_arg(&q->fwd, DNNL_ARG_WORKSPACE, q->ws);
    }
    if (l->in_diff[0]) {
        exec_init(&q->bwd, ctx, q->bwd_pd, b->scratch);
        exec_arg(&q->bwd, DNNL_ARG_DIFF_DST, l->out->diff);
        exec_arg(&q->bwd, DNNL_ARG_DIFF_SRC, l->in_diff[0]);
        if (q->ws)
            exec_arg(&q->bwd, DNNL_ARG_WORKSPACE, q->ws);
    }
}

static void pool_forward(dnal_layer *l, const dnal_ctx *ctx, const dnal_pass *p)
{
    (void)p;
    exec_run(&((pool_layer *)l)->fwd, ctx);
}

static void pool_backward(dnal_layer *l, const dnal_ctx *ctx, const dnal_pass *p)
{
    (void)p;
    if (l->in_diff[0])
        exec_run(&((pool_layer *)l)->bwd, ctx);
}

static void pool_destroy(dnal_layer *l)
{
    pool_layer *q = (pool_layer *)l;
    exec_free(&q->fwd);
    exec_free(&q->bwd);
    if (q->ws)
        dnnl_memory_destroy(q->ws);
    dnnl_primitive_desc_destroy(q->fwd_pd);
    dnnl_primitive_desc_destroy(q->bwd_pd);
    free(q);
}

static const dnal_layer_ops pool_ops = {pool_bind, pool_forward, pool_backward, pool_destroy};

dnal_layer *dnal_pool_create(const dnal_ctx *ctx, const char *name, dnal_layer_kind kind,
                             dnal_tensor *in, dnal_tensor *out, int64_t kernel,
                             int64_t stride, int64_t pad)
{
    pool_layer *q = calloc(1, sizeof *q);
    dnal_layer *l = &q->base;
    DNAL_ASSERT(q && (kind == DNAL_MAXPOOL || kind == DNAL_AVGPOOL || kind == DNAL_GAP));
    layer_init(l, &pool_ops, kind, name);
    l->n_in = 1;
    l->in[0] = in;
    l->out = out;
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
    q->fwd_pd = dnal_pd_pool_fwd(ctx, alg, &in->md, &dlike, g);
    dnal_md dst = dnal_pd_md(q->fwd_pd, dnnl_query_dst_md, 0);
    tensor_set(out, &dst);
    l->fwd_pd = q->fwd_pd;
    q->bwd_pd = dnal_pd_pool_bwd(ctx, alg, &in->md, &dst, g, q->fwd_pd);
    dnal_md wsmd = dnal_pd_md(q->fwd_pd, dnnl_query_workspace_md, 0);
    q->ws_off = layer_priv(l, dnal_md_bytes(&wsmd));
    layer_pd(l, q->fwd_pd);
    layer_pd(l, q->bwd_pd);
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
