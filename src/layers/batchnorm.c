/* Batch normalisation with separate scale and shift, and what a network
 * fuses into it (src/net/fuse.c): the gate that follows it and the ReLU
 * after that.
 *
 * Training uses the batch statistics and updates the running averages as
 * PyTorch does (momentum 0.1, unbiased variance); inference uses the running
 * statistics. Over channels last with widths for which oneDNN 2.6 has only
 * its generic C++ kernel (not a multiple of 4), dnal's own kernel runs
 * instead (bn_last.c).
 *
 * A folded gate: y = g (gamma xhat + beta) = (g gamma) xhat + (g beta), so
 * the primitive runs with scale g gamma and shift g beta and returns the
 * gradients of those, ds and dh; then
 *   dgamma = g ds,  dbeta = g dh,
 *   sum over the channel of dy_gate * BN(x) = gamma ds + beta dh,
 * which is all the gate's alpha gradient needs: no pass over the
 * activations beyond the primitive's own.
 *
 * A frozen BN (search stage) still normalises with batch statistics;
 * oneDNN 2.6 has no backward-data-only BN with a scale, so a frozen BN
 * sends its scale and shift gradients to private buffers and the flat
 * gradient buffer stays untouched. */
#include <stdlib.h>

#include "internal.h"

enum { BN_SCALE = 0, BN_SHIFT = 1 };
static const float BN_EPS = 1e-5f, BN_MOMENTUM = 0.1f;

typedef struct bn_layer {
    dnal_layer base;
    dnal_pd train_pd, infer_pd, bwd_pd;
    int own;                   /* bn_last.c computes, not oneDNN */
    bn_last k;
    int relu;                  /* a ReLU fused on the output */
    const dnal_layer *gate;    /* a gate folded into scale and shift; NULL: none */
    size_t mean_off, var_off;  /* batch statistics, private */
    size_t fold_off;           /* 6C private floats: scale, shift, their gradients, s, g */
    size_t ws_off;             /* the fused ReLU's mask (oneDNN's workspace) */
    float *run_mean, *run_var, *mean, *var;
    float *gamma, *beta, *dgamma, *dbeta;   /* the parameters and their gradients */
    float *fscale, *fshift, *dfscale, *dfshift, *s, *g; /* private, C each */
    float *alpha, *dalpha, *mask;           /* the folded gate's channels */
    dnnl_memory_t mems[11];
    exec_t train, infer, bwd, bwd_private;
} bn_layer;

static dnnl_memory_t plain_mem(bn_layer *n, int *k, const dnal_ctx *ctx, float *p)
{
    int64_t c = n->base.in[0]->c;
    dnal_md cmd = dnal_md_plain(1, &c);
    DNAL_ASSERT(*k < (int)(sizeof n->mems / sizeof n->mems[0]));
    return n->mems[(*k)++] = dnal_memory(ctx, &cmd, p);
}

static void bn_bind(dnal_layer *l, const dnal_ctx *ctx, const dnal_buffers *b)
{
    bn_layer *n = (bn_layer *)l;
    int64_t c = l->in[0]->c;
    DNAL_ASSERT(l->in_diff[0] != NULL);
    n->run_mean = b->stats + l->stats_off;
    n->run_var = n->run_mean + c;
    n->mean = (float *)(b->priv + n->mean_off);
    n->var = (float *)(b->priv + n->var_off);
    n->gamma = param_ptr(l, b, BN_SCALE);
    n->beta = param_ptr(l, b, BN_SHIFT);
    n->dgamma = grad_ptr(l, b, BN_SCALE);
    n->dbeta = grad_ptr(l, b, BN_SHIFT);
    float *fold = (float *)(b->priv + n->fold_off);
    n->fscale = fold;
    n->fshift = fold + c;
    n->dfscale = fold + 2 * c;
    n->dfshift = fold + 3 * c;
    n->s = fold + 4 * c;
    n->g = fold + 5 * c;
    if (n->gate) {
        n->alpha = b->alpha + n->gate->gate_off;
        n->dalpha = b->alpha_grad + n->gate->gate_off;
        n->mask = b->mask + n->gate->gate_off;
    }
    if (n->own) {
        bn_last_bind(&n->k, b->priv);
        return;
    }
    int k = 0;
    /* with a folded gate the primitive reads the private folded scale and shift */
    dnnl_memory_t scale = plain_mem(n, &k, ctx, n->gate ? n->fscale : n->gamma);
    dnnl_memory_t shift = plain_mem(n, &k, ctx, n->gate ? n->fshift : n->beta);
    dnnl_memory_t mean = plain_mem(n, &k, ctx, n->mean), var = plain_mem(n, &k, ctx, n->var);
    dnnl_memory_t run_mean = plain_mem(n, &k, ctx, n->run_mean);
    dnnl_memory_t run_var = plain_mem(n, &k, ctx, n->run_var);
    dnnl_memory_t ws = NULL;
    if (n->relu) {
        dnal_md wsmd = dnal_pd_md(n->train_pd, dnnl_query_workspace_md, 0);
        ws = n->mems[k++] = dnal_memory(ctx, &wsmd, b->priv + n->ws_off);
    }

    exec_init(&n->train, ctx, n->train_pd, b->scratch);
    exec_init(&n->infer, ctx, n->infer_pd, b->scratch);
    exec_t *fw[2] = {&n->train, &n->infer};
    for (int i = 0; i < 2; i++) {
        exec_arg(fw[i], DNNL_ARG_SRC, l->in[0]->mem);
        exec_arg(fw[i], DNNL_ARG_DST, l->out->mem);
        exec_arg(fw[i], DNNL_ARG_SCALE, scale);
        exec_arg(fw[i], DNNL_ARG_SHIFT, shift);
    }
    exec_arg(&n->train, DNNL_ARG_MEAN, mean);
    exec_arg(&n->train, DNNL_ARG_VARIANCE, var);
    if (ws)
        exec_arg(&n->train, DNNL_ARG_WORKSPACE, ws);
    exec_arg(&n->infer, DNNL_ARG_MEAN, run_mean);
    exec_arg(&n->infer, DNNL_ARG_VARIANCE, run_var);

    /* bwd writes the parameter gradients (no gate, not frozen); bwd_private
     * the private ones (a folded gate, or frozen) */
    exec_init(&n->bwd, ctx, n->bwd_pd, b->scratch);
    exec_init(&n->bwd_private, ctx, n->bwd_pd, b->scratch);
    exec_t *bw[2] = {&n->bwd, &n->bwd_private};
    for (int i = 0; i < 2; i++) {
        exec_arg(bw[i], DNNL_ARG_SRC, l->in[0]->mem);
        exec_arg(bw[i], DNNL_ARG_MEAN, mean);
        exec_arg(bw[i], DNNL_ARG_VARIANCE, var);
        exec_arg(bw[i], DNNL_ARG_DIFF_DST, l->out->diff);
        exec_arg(bw[i], DNNL_ARG_SCALE, scale);
        exec_arg(bw[i], DNNL_ARG_SHIFT, shift); /* required by oneDNN, though unused */
        exec_arg(bw[i], DNNL_ARG_DIFF_SRC, l->in_diff[0]);
        if (ws)
            exec_arg(bw[i], DNNL_ARG_WORKSPACE, ws);
    }
    exec_arg(&n->bwd, DNNL_ARG_DIFF_SCALE, plain_mem(n, &k, ctx, n->dgamma));
    exec_arg(&n->bwd, DNNL_ARG_DIFF_SHIFT, plain_mem(n, &k, ctx, n->dbeta));
    exec_arg(&n->bwd_private, DNNL_ARG_DIFF_SCALE, plain_mem(n, &k, ctx, n->dfscale));
    exec_arg(&n->bwd_private, DNNL_ARG_DIFF_SHIFT, plain_mem(n, &k, ctx, n->dfshift));
}

/* the folded scale and shift of this pass's gate values */
static void fold_gate(bn_layer *n, const dnal_pass *p)
{
    int64_t c = n->base.in[0]->c;
    gate_eval(p, n->alpha, n->mask, c, n->s, n->g);
    for (int64_t j = 0; j < c; j++) {
        n->fscale[j] = n->gamma[j] * n->g[j];
        n->fshift[j] = n->beta[j] * n->g[j];
    }
}

static void bn_forward(dnal_layer *l, const dnal_ctx *ctx, const dnal_pass *p)
{
    bn_layer *n = (bn_layer *)l;
    if (n->gate)
        fold_gate(n, p);
    if (n->own) {
        DNNL_CHECK(dnnl_stream_wait(ctx->stream));
        bn_last_forward(&n->k, p->training, n->relu, mem_ptr(l->in[0]->mem),
                        mem_ptr(l->out->mem), n->gate ? n->fscale : n->gamma,
                        n->gate ? n->fshift : n->beta, p->training ? n->mean : n->run_mean,
                        p->training ? n->var : n->run_var, BN_EPS);
    } else {
        exec_run(p->training ? &n->train : &n->infer, ctx);
    }
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

/* from the gradients of the folded scale and shift: the gate's alpha
 * gradient and (not frozen) the parameters' */
static void unfold_gate(bn_layer *n, const dnal_pass *p)
{
    const dnal_layer *l = &n->base;
    for (int64_t j = 0; j < l->in[0]->c; j++) {
        double sum = (double)n->gamma[j] * n->dfscale[j] + (double)n->beta[j] * n->dfshift[j];
        n->dalpha[j] = gate_dalpha(p, n->s[j], n->mask[j], sum);
        if (!l->frozen) {
            n->dgamma[j] = n->dfscale[j] * n->g[j];
            n->dbeta[j] = n->dfshift[j] * n->g[j];
        }
    }
}

static void bn_backward(dnal_layer *l, const dnal_ctx *ctx, const dnal_pass *p)
{
    bn_layer *n = (bn_layer *)l;
    /* the gradient uses the batch statistics of a training forward */
    DNAL_ASSERT(p->training);
    int direct = !n->gate && !l->frozen; /* the primitive writes the parameter gradients */
    if (n->own) {
        DNNL_CHECK(dnnl_stream_wait(ctx->stream));
        bn_last_backward(&n->k, mem_ptr(l->in[0]->mem), n->relu ? mem_ptr(l->out->mem) : NULL,
                         mem_ptr(l->out->diff), mem_ptr(l->in_diff[0]),
                         n->gate ? n->fscale : n->gamma, n->mean, n->var,
                         direct ? n->dgamma : n->dfscale, direct ? n->dbeta : n->dfshift, BN_EPS);
    } else {
        exec_run(direct ? &n->bwd : &n->bwd_private, ctx);
    }
    if (n->gate) {
        DNNL_CHECK(dnnl_stream_wait(ctx->stream));
        unfold_gate(n, p);
    }
}

static void bn_destroy(dnal_layer *l)
{
    bn_layer *n = (bn_layer *)l;
    exec_free(&n->train);
    exec_free(&n->infer);
    exec_free(&n->bwd);
    exec_free(&n->bwd_private);
    for (size_t i = 0; i < sizeof n->mems / sizeof n->mems[0]; i++)
        if (n->mems[i])
            dnnl_memory_destroy(n->mems[i]);
    dnnl_primitive_desc_destroy(n->train_pd);
    dnnl_primitive_desc_destroy(n->infer_pd);
    dnnl_primitive_desc_destroy(n->bwd_pd);
    free(n);
}

static const dnal_layer_ops bn_ops = {bn_bind, bn_forward, bn_backward, bn_destroy};

/* oneDNN's primitives, with or without the fused ReLU; 0 where its kernel
 * would be the generic C++ one and dnal's own serves better (channels last) */
static int create_pds(bn_layer *n, const dnal_ctx *ctx, int relu)
{
    dnal_layer *l = &n->base;
    const dnal_md *md = &l->in[0]->md;
    dnal_pd train = dnal_pd_bn_fwd(ctx, DNAL_BN_TRAIN, md, BN_EPS, relu);
    if (dnal_md_is_channels_last(md) && dnal_pd_is_generic(train)) {
        dnnl_primitive_desc_destroy(train);
        return 0;
    }
    n->train_pd = train;
    n->infer_pd = dnal_pd_bn_fwd(ctx, DNAL_BN_INFER, md, BN_EPS, relu);
    n->bwd_pd = dnal_pd_bn_bwd(ctx, md, BN_EPS, relu, train);
    l->fwd_pd = train;
    layer_pd(l, n->train_pd);
    layer_pd(l, n->infer_pd);
    layer_pd(l, n->bwd_pd);
    return 1;
}

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
    n->fold_off = layer_priv(l, 6 * sizeof(float) * (size_t)in->c);
    if (!create_pds(n, ctx, 0)) {
        n->own = 1;
        bn_last_plan(&n->k, l, in->n * in->h * in->w, in->c, dnal_md_is_bf16(&in->md));
        tensor_set(out, &in->md);
        return l;
    }
    dnal_md dst = dnal_pd_md(n->train_pd, dnnl_query_dst_md, 0);
    tensor_set(out, &dst);
    return l;
}

int dnal_bn_fuse(dnal_layer *l, const dnal_ctx *ctx, const dnal_layer *gate, int relu)
{
    bn_layer *n = (bn_layer *)l;
    DNAL_ASSERT(l->kind == DNAL_BN && !n->gate && !n->relu);
    DNAL_ASSERT(!gate || (gate->kind == DNAL_GATE && gate->n_gates == (size_t)l->in[0]->c));
    n->gate = gate;
    if (relu && !n->own) {
        /* the fused primitives replace the plain ones where oneDNN has a
         * kernel for them that is neither reference nor generic */
        dnal_pd old[3] = {n->train_pd, n->infer_pd, n->bwd_pd};
        l->n_pd = 0;
        if (create_pds(n, ctx, 1) && !dnal_pd_is_reference(n->train_pd) &&
            !dnal_pd_is_reference(n->bwd_pd)) {
            dnal_md dst = dnal_pd_md(n->train_pd, dnnl_query_dst_md, 0);
            DNAL_ASSERT(dnal_md_equal(&dst, &l->out->md));
            for (int i = 0; i < 3; i++)
                dnnl_primitive_desc_destroy(old[i]);
            dnal_md wsmd = dnal_pd_md(n->train_pd, dnnl_query_workspace_md, 0);
            n->ws_off = layer_priv(l, dnal_md_bytes(&wsmd));
            n->relu = 1;
        } else {
            if (l->n_pd > 0) { /* created, but not wanted */
                dnnl_primitive_desc_destroy(n->train_pd);
                dnnl_primitive_desc_destroy(n->infer_pd);
                dnnl_primitive_desc_destroy(n->bwd_pd);
            }
            n->train_pd = old[0];
            n->infer_pd = old[1];
            n->bwd_pd = old[2];
            l->n_pd = 0;
            for (int i = 0; i < 3; i++)
                layer_pd(l, old[i]);
            l->fwd_pd = old[0];
        }
    } else if (relu) {
        n->relu = 1; /* dnal's own kernel clamps and masks itself */
    }
    return n->relu;
}
