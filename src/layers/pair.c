/* What ReLU, ReLU6 and pooling share: one forward and one backward oneDNN
 * primitive over the layer's input and output (and max pooling's
 * workspace, where the maxima were). */
#include <stdlib.h>

#include "internal.h"

typedef struct pair_layer {
    dnal_layer base;
    dnal_pd fwd_pd, bwd_pd;
    int bwd_reads_src;     /* eltwise backward reads the source, pooling's does not */
    size_t ws_off;
    dnnl_memory_t ws;      /* NULL: no workspace */
    exec_t fwd, bwd;
} pair_layer;

static void pair_bind(dnal_layer *l, const dnal_ctx *ctx, const dnal_buffers *b)
{
    pair_layer *q = (pair_layer *)l;
    exec_init(&q->fwd, ctx, q->fwd_pd, b->scratch);
    exec_arg(&q->fwd, DNNL_ARG_SRC, l->in[0]->mem);
    exec_arg(&q->fwd, DNNL_ARG_DST, l->out->mem);
    dnal_md wsmd = dnal_pd_md(q->fwd_pd, dnnl_query_workspace_md, 0);
    if (dnal_md_bytes(&wsmd) > 0) {
        q->ws = dnal_memory(ctx, &wsmd, b->priv + q->ws_off);
        exec_arg(&q->fwd, DNNL_ARG_WORKSPACE, q->ws);
    }
    if (!l->in_diff[0])
        return;
    exec_init(&q->bwd, ctx, q->bwd_pd, b->scratch);
    if (q->bwd_reads_src)
        exec_arg(&q->bwd, DNNL_ARG_SRC, l->in[0]->mem);
    exec_arg(&q->bwd, DNNL_ARG_DIFF_DST, l->out->diff);
    exec_arg(&q->bwd, DNNL_ARG_DIFF_SRC, l->in_diff[0]);
    if (q->ws)
        exec_arg(&q->bwd, DNNL_ARG_WORKSPACE, q->ws);
}

static void pair_forward(dnal_layer *l, const dnal_ctx *ctx, const dnal_pass *p)
{
    (void)p;
    exec_run(&((pair_layer *)l)->fwd, ctx);
}

static void pair_backward(dnal_layer *l, const dnal_ctx *ctx, const dnal_pass *p)
{
    (void)p;
    if (l->in_diff[0])
        exec_run(&((pair_layer *)l)->bwd, ctx);
}

static void pair_destroy(dnal_layer *l)
{
    pair_layer *q = (pair_layer *)l;
    exec_free(&q->fwd);
    exec_free(&q->bwd);
    if (q->ws)
        dnnl_memory_destroy(q->ws);
    dnnl_primitive_desc_destroy(q->fwd_pd);
    dnnl_primitive_desc_destroy(q->bwd_pd);
    free(q);
}

static const dnal_layer_ops pair_ops = {pair_bind, pair_forward, pair_backward, pair_destroy};

dnal_layer *pair_layer_new(dnal_layer_kind kind, const char *name, dnal_tensor *in,
                           dnal_tensor *out, int bwd_reads_src)
{
    pair_layer *q = layer_new(sizeof *q, &pair_ops, kind, name, in, NULL, out);
    q->bwd_reads_src = bwd_reads_src;
    return &q->base;
}

void pair_layer_finish(dnal_layer *l, dnal_pd fwd, dnal_pd bwd)
{
    pair_layer *q = (pair_layer *)l;
    q->fwd_pd = fwd;
    q->bwd_pd = bwd;
    dnal_md dst = dnal_pd_md(fwd, dnnl_query_dst_md, 0);
    tensor_set(l->out, &dst);
    dnal_md wsmd = dnal_pd_md(fwd, dnnl_query_workspace_md, 0);
    q->ws_off = layer_priv(l, dnal_md_bytes(&wsmd));
    l->fwd_pd = fwd;
    layer_pd(l, fwd);
    layer_pd(l, bwd);
}
