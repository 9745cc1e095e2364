/* Batch normalisation with separate scale and shift.
 *
 * Training uses the batch statistics and updates the running averages as
 * PyTorch does (momentum 0.1, unbiased variance); inference uses the running
 * statistics. A frozen BN (search stage) still normalises with batch
 * statistics; oneDNN 2.6 has no backward-data-only BN with a scale, so a
 * frozen BN sends its scale and shift gradients to private dummies and the
 * flat gradient buffer stays untouched. Over channels last with widths for
 * which oneDNN 2.6 has only its generic C++ kernel (not a multiple of 4),
 * dnal's own kernel runs instead (bn_last.c). */
#include <stdlib.h>

#include "internal.h"

enum { BN_SCALE = 0, BN_SHIFT = 1 };
static const float BN_EPS = 1e-5f, BN_MOMENTUM = 0.1f;

typedef struct bn_layer {
    dnal_layer base;
    dnal_pd train_pd, infer_pd, bwd_pd;
    size_t mean_off, var_off;              /* batch statistics, private */
    size_t dummy_off;                      /* frozen: 2C discarded gradients */
    float *run_mean, *run_var, *mean, *var;
    dnnl_memory_t scale, shift, dscale, dshift, mean_m, var_m, run_mean_m, run_var_m;
    dnnl_memory_t dummy_scale, dummy_shift;
    exec_t train, infer, bwd, bwd_frozen;
    int own;                               /* bn_last.c computes, not oneDNN */
    bn_last k;
    float *scale_p, *shift_p, *dscale_p, *dshift_p, *dummy_p;
} bn_layer;

static void own_bind(bn_layer *n, const dnal_buffers *b)
{
    dnal_layer *l = &n->base;
    bn_last_bind(&n->k, b->priv);
    n->scale_p = param_ptr(l, b, BN_SCALE);
    n->shift_p = param_ptr(l, b, BN_SHIFT);
    n->dscale_p = grad_ptr(l, b, BN_SCALE);
    n->dshift_p = grad_ptr(l, b, BN_SHIFT);
    n->dummy_p = (float *)(b->priv + n->dummy_off);
}

static void bn_bind(dnal_layer *l, const dnal_ctx *ctx, const dnal_buffers *b)
{
    bn_layer *n = (bn_layer *)l;
    int64_t c = l->in[0]->c;
    dnal_md cmd = dnal_md_plain(1, &c);
    DNAL_ASSERT(l->in_diff[0] != NULL);
    n->run_mean = b->stats + l->stats_off;
    n->run_var = n->run_mean + c;
    n->mean = (float *)(b->priv + n->mean_off);
    n->var = (float *)(b->priv + n->var_off);
    if (n->own) {
        own_bind(n, b);
        return;
    }
    n->scale = dnal_memory(ctx, &cmd, param_ptr(l, b, BN_SCALE));
    n->shift = dnal_memory(ctx, &cmd, param_ptr(l, b, BN_SHIFT));
    n->dscale = dnal_memory(ctx, &cmd, grad_ptr(l, b, BN_SCALE));
    n->dshift = dnal_memory(ctx, &cmd, grad_ptr(l, b, BN_SHIFT));
    n->mean_m = dnal_memory(ctx, &cmd, n->mean);
    n->var_m = dnal_memory(ctx, &cmd, n->var);
    n->run_mean_m = dnal_memory(ctx, &cmd, n->run_mean);
    n->run_var_m = dnal_memory(ctx, &cmd, n->run_var);
    n->dummy_scale = dnal_memory(ctx, &cmd, b->priv + n->dummy_off);
    n->dummy_shift = dnal_memory(ctx, &cmd, (float *)(b->priv + n->dummy_off) + c);

    exec_init(&n->train, ctx, n->train_pd, b->scratch);
    exec_init(&n->infer, ctx, n->infer_pd, b->scratch);
    exec_t *fw[2] = {&n->train, &n->infer};
    for (int i = 0; i < 2; i++) {
        exec_arg(fw[i], DNNL_ARG_SRC, l->in[0]->mem);
        exec_arg(fw[i], DNNL_ARG_DST, l->out->mem);
        exec_arg(fw[i], DNNL_ARG_SCALE, n->scale);
        exec_arg(fw[i], DNNL_ARG_SHIFT, n->shift);
    }
    exec_arg(&n->train, DNNL_ARG_MEAN, n->mean_m);
    exec_arg(&n->train, DNNL_ARG_VARIANCE, n->var_m);
    exec_arg(&n->infer, DNNL_ARG_MEAN, n->run_mean_m);
    exec_arg(&n->infer, DNNL_ARG_VARIANCE, n->run_var_m);

    exec_init(&n->bwd, ctx, n->bwd_pd, b->scratch);
    exec_init(&n->bwd_frozen, ctx, n->bwd_pd, b->scratch);
    exec_t *bw[2] = {&n->bwd, &n->bwd_frozen};
    for (int i = 0; i < 2; i++) {
        exec_arg(bw[i], DNNL_ARG_SRC, l->in[0]->mem);
        exec_arg(bw[i], DNNL_ARG_MEAN, n->mean_m);
        exec_arg(bw[i], DNNL_ARG_VARIANCE, n->var_m);
        exec_arg(bw[i], DNNL_ARG_DIFF_DST, l->out->diff);
        exec_arg(bw[i], DNNL_ARG_SCALE, n->scale);
        exec_arg(bw[i], DNNL_ARG_SHIFT, n->shift); /* required by oneDNN, though unused */
        exec_arg(bw[i], DNNL_ARG_DIFF_SRC, l->in_diff[0]);
    }
    exec_arg(&n->bwd, DNNL_ARG_DIFF_SCALE, n->dscale);
    exec_arg(&n->bwd, DNNL_ARG_DIFF_SHIFT, n->dshift);
    exec_arg(&n->bwd_frozen, DNNL_ARG_DIFF_SCALE, n->dummy_scale);
    exec_arg(&n->bwd_frozen, DNNL_ARG_DIFF_SHIFT, n->dummy_shift);
}

static void own_forward(bn_layer *n, const dnal_ctx *ctx, int training)
{
    dnal_layer *l = &n->base;
    DNNL_CHECK(dnnl_stream_wait(ctx->stream));
    bn_last_forward(&n->k, training, mem_ptr(l->in[0]->mem), mem_ptr(l->out->mem), n->scale_p,
                    n->shift_p, training ? n->mean : n->run_mean,
                    training ? n->var : n->run_var, BN_EPS);
}

static void bn_forward(dnal_layer *l, const dnal_ctx *ctx, const dnal_pass *p)
{
    bn_layer *n = (bn_layer *)l;
    if (n->own)
        own_forward(n, ctx, p->training);
    else if (!p->training)
        exec_run(&n->infer, ctx);
    else
        exec_run(&n->train, ctx);
    if (!p->training)
        return;
    DNNL_CHECK(dnnl_stream_wait(ctx->stream));
    const dnal_tensor *x = l->in[0];
    double m = (double)(x->n * x->h * x->w);
    float unbias = m > 1 ? (float)(m / (m - 1)) : 1.0f;
    for (int64_t c = 0; c < x->c; c++) {
        n->run_mean[c] = (1 - BN_MOMENTUM) * n->run_mean[c] + BN_MOMENTUM * n->mean[c];
        n->run_var[c] = (1 - BN_MOMENTUM) * n->run_var[c] + BN_MOMENTUM * n->var[c] * unbias;
    }
}

static void bn_backward(dnal_layer *l, const dnal_ctx *ctx, const dnal_pass *p)
{
    bn_layer *n = (bn_layer *)l;
    /* the gradient uses the batch statistics of a training forward */
    DNAL_ASSERT(p->training);
    if (!n->own) {
        exec_run(l->frozen ? &n->bwd_frozen : &n->bwd, ctx);
        return;
    }
    DNNL_CHECK(dnnl_stream_wait(ctx->stream));
    float *ds = l->frozen ? n->dummy_p : n->dscale_p;
    float *dh = l->frozen ? n->dummy_p + l->in[0]->c : n->dshift_p;
    bn_last_backward(&n->k, mem_ptr(l->in[0]->mem), mem_ptr(l->out->diff),
                     mem_ptr(l->in_diff[0]), n->scale_p, n->mean, n->var, ds, dh, BN_EPS);
}

static void bn_destroy(dnal_layer *l)
{
    bn_layer *n = (bn_layer *)l;
    exec_free(&n->train);
    exec_free(&n->infer);
    exec_free(&n->bwd);
    exec_free(&n->bwd_frozen);
    dnnl_memory_t mems[] = {n->scale, n->shift, n->dscale, n->dshift, n->mean_m,
                            n->var_m, n->run_mean_m, n->run_var_m, n->dummy_scale, n->dummy_shift};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        if (mems[i])
            dnnl_memory_destroy(mems[i]);
    dnnl_primitive_desc_destroy(n->train_pd);
    dnnl_primitive_desc_destroy(n->infer_pd);
    dnnl_primitive_desc_destroy(n->bwd_pd);
    free(n);
}

static const dnal_layer_ops bn_ops = {bn_bind, bn_forward, bn_backward, bn_destroy};

dnal_layer *dnal_bn_create(const dnal_ctx *ctx, const char *name, dnal_tensor *in,
                           dnal_tensor *out)
{
    bn_layer *n = layer_new(sizeof *n, &bn_ops, DNAL_BN, name, in, NULL, out);
    dnal_layer *l = &n->base;
    layer_param(l, "scale", DNAL_PARAM_NORM, 1, &in->c);
    layer_param(l, "shift", DNAL_PARAM_NORM, 1, &in->c);
    l->n_stats = 2 * (size_t)in->c; /* running mean, running variance */
    n->mean_off = layer_priv(l, sizeof(float) * (size_t)in->c);
    n->var_off = layer_priv(l, sizeof(float) * (size_t)in->c);

    n->dummy_off = layer_priv(l, 2 * sizeof(float) * (size_t)in->c);
    n->train_pd = dnal_pd_bn_fwd(ctx, DNAL_BN_TRAIN, &in->md, BN_EPS);
    if (dnal_md_is_channels_last(&in->md) && dnal_pd_is_generic(n->train_pd)) {
        dnnl_primitive_desc_destroy(n->train_pd);
        n->train_pd = NULL;
        n->own = 1;
        bn_last_plan(&n->k, l, in->n * in->h * in->w, in->c);
        tensor_set(out, &in->md);
        return l;
    }
    n->infer_pd = dnal_pd_bn_fwd(ctx, DNAL_BN_INFER, &in->md, BN_EPS);
    n->bwd_pd = dnal_pd_bn_bwd(ctx, &in->md, BN_EPS, n->train_pd);
    dnal_md dst = dnal_pd_md(n->train_pd, dnnl_query_dst_md, 0);
    tensor_set(out, &dst);
    l->fwd_pd = n->train_pd;
    layer_pd(l, n->train_pd);
    layer_pd(l, n->infer_pd);
    layer_pd(l, n->bwd_pd);
    return l;
}
