/* What all layers share: dispatch, bookkeeping of storage, primitive
 * execution with the shared scratchpad, and weights kept plain. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *kind_names[DNAL_LAYER_KINDS] = {
    [DNAL_CONV] = "conv",       [DNAL_BN] = "bn",         [DNAL_RELU] = "relu",
    [DNAL_RELU6] = "relu6",     [DNAL_MAXPOOL] = "maxpool", [DNAL_AVGPOOL] = "avgpool",
    [DNAL_GAP] = "gap",         [DNAL_LINEAR] = "linear", [DNAL_ADD] = "add",
    [DNAL_GATE] = "gate",       [DNAL_SOFTMAX_CE] = "softmax_ce", [DNAL_SCATTER_ADD] = "scatter_add",
};

const char *dnal_layer_kind_name(dnal_layer_kind k)
{
    return (k >= 0 && k < DNAL_LAYER_KINDS) ? kind_names[k] : "?";
}

void dnal_layer_bind(dnal_layer *l, const dnal_ctx *ctx, const dnal_buffers *b)
{
    if (!l->absorbed)
        l->ops->bind(l, ctx, b);
}

void dnal_layer_forward(dnal_layer *l, const dnal_ctx *ctx, const dnal_pass *p)
{
    if (!l->absorbed)
        l->ops->forward(l, ctx, p);
}

void dnal_layer_backward(dnal_layer *l, const dnal_ctx *ctx, const dnal_pass *p)
{
    if (!l->absorbed)
        l->ops->backward(l, ctx, p);
}

void dnal_layer_destroy(dnal_layer *l)
{
    if (l)
        l->ops->destroy(l);
}

int dnal_layer_is_depthwise(const dnal_layer *l)
{
    return l->kind == DNAL_CONV && l->groups > 1 && l->groups == l->in[0]->c;
}

int dnal_layer_keeps_channels(const dnal_layer *l)
{
    switch (l->kind) {
    case DNAL_BN: case DNAL_RELU: case DNAL_RELU6: case DNAL_MAXPOOL: case DNAL_AVGPOOL:
    case DNAL_GAP:
        return 1;
    case DNAL_CONV:
        return dnal_layer_is_depthwise(l) && l->out->c == l->in[0]->c;
    default:
        return 0;
    }
}

int dnal_layer_impls(const dnal_layer *l, const char **impl, int max)
{
    int n = l->n_pd < max ? l->n_pd : max;
    for (int i = 0; i < n; i++)
        impl[i] = dnal_pd_impl(l->pd[i]);
    return n;
}

dnal_md dnal_layer_src_md(const dnal_layer *l, int k)
{
    DNAL_ASSERT(k < l->n_in);
    if (l->fwd_pd)
        return dnal_pd_md(l->fwd_pd, dnnl_query_src_md, k);
    return l->in[k]->md; /* dnal's own kernels read the layout they are given */
}

void *layer_new(size_t bytes, const dnal_layer_ops *ops, dnal_layer_kind kind, const char *name,
                dnal_tensor *a, dnal_tensor *b, dnal_tensor *out)
{
    dnal_layer *l = dnal_calloc(bytes);
    l->ops = ops;
    l->kind = kind;
    snprintf(l->name, sizeof l->name, "%s", name ? name : dnal_layer_kind_name(kind));
    l->groups = 1;
    l->n_in = b ? 2 : 1;
    l->in[0] = a;
    l->in[1] = b;
    l->out = out;
    return l;
}

void layer_param(dnal_layer *l, const char *name, dnal_param_role role, int ndims,
                 const int64_t *dims)
{
    DNAL_ASSERT(l->n_params < 2 && ndims <= 5);
    dnal_param *p = &l->param[l->n_params++];
    p->name = name;
    p->role = role;
    p->ndims = ndims;
    p->count = 1;
    for (int i = 0; i < ndims; i++) {
        p->dims[i] = dims[i];
        p->count *= (size_t)dims[i];
    }
}

void tensor_set(dnal_tensor *t, const dnal_md *md)
{
    int64_t dims[4];
    t->md = *md;
    t->ndims = dnal_md_dims(md, dims);
    t->n = dims[0];
    t->c = dims[1];
    t->h = dims[2];
    t->w = dims[3];
    t->mem = t->diff = NULL;
}

size_t layer_priv(dnal_layer *l, size_t bytes)
{
    size_t off = (l->priv_bytes + 63) / 64 * 64;
    l->priv_bytes = off + bytes;
    return off;
}

void layer_pd(dnal_layer *l, dnal_pd pd)
{
    DNAL_ASSERT(l->n_pd < 4);
    l->pd[l->n_pd++] = pd;
    size_t s = dnal_pd_scratch_bytes(pd);
    if (s > l->scratch_bytes)
        l->scratch_bytes = s;
}

void *mem_ptr(dnnl_memory_t m)
{
    void *p = NULL;
    if (m)
        DNNL_CHECK(dnnl_memory_get_data_handle(m, &p));
    return p;
}

enum { CHUNK = 1 << 16 };

void copy_parallel(void *dst, const void *src, size_t bytes)
{
    size_t nchunks = (bytes + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < nchunks; i++) {
        size_t off = i * CHUNK, len = bytes - off < CHUNK ? bytes - off : CHUNK;
        memcpy((char *)dst + off, (const char *)src + off, len);
    }
}

void zero_parallel(void *dst, size_t bytes)
{
    size_t nchunks = (bytes + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < nchunks; i++) {
        size_t off = i * CHUNK, len = bytes - off < CHUNK ? bytes - off : CHUNK;
        memset((char *)dst + off, 0, len);
    }
}

/* ------------------------------------------------------------------ exec */

void exec_init(exec_t *e, const dnal_ctx *ctx, dnal_pd pd, void *scratch)
{
    memset(e, 0, sizeof *e);
    e->prim = dnal_primitive(pd);
    dnal_md smd = dnal_pd_md(pd, dnnl_query_scratchpad_md, 0);
    if (dnal_md_bytes(&smd) > 0) {
        DNAL_ASSERT(scratch != NULL);
        e->scratch = dnal_memory(ctx, &smd, scratch);
        exec_arg(e, DNNL_ARG_SCRATCHPAD, e->scratch);
    }
}

void exec_arg(exec_t *e, int arg, dnnl_memory_t mem)
{
    DNAL_ASSERT(e->nargs < EXEC_MAX_ARGS && mem != NULL);
    e->args[e->nargs].arg = arg;
    e->args[e->nargs].memory = mem;
    e->nargs++;
}

void exec_run(const exec_t *e, const dnal_ctx *ctx)
{
    dnal_exec(ctx, e->prim, e->nargs, e->args);
}

void exec_free(exec_t *e)
{
    if (e->prim)
        dnnl_primitive_destroy(e->prim);
    if (e->scratch)
        dnnl_memory_destroy(e->scratch);
    memset(e, 0, sizeof *e);
}

/* ------------------------------------------------------------------ view */

void view_plan(view_t *v, const dnal_md *have, const dnal_md *want, dnal_layer *l)
{
    memset(v, 0, sizeof *v);
    v->have = *have;
    v->want = *want;
    v->copy = !dnal_md_equal(have, want);
    if (v->copy)
        v->off = layer_priv(l, dnal_md_bytes(want));
}

void view_bind(view_t *v, const dnal_ctx *ctx, dnnl_memory_t have_mem, char *priv, void *scratch,
               int into_primitive)
{
    if (!v->copy) {
        v->mem = have_mem;
        return;
    }
    v->own = v->mem = dnal_memory(ctx, &v->want, priv + v->off);
    dnal_pd pd = into_primitive ? dnal_pd_reorder(ctx, &v->have, &v->want)
                                : dnal_pd_reorder(ctx, &v->want, &v->have);
    exec_init(&v->reorder, ctx, pd, scratch);
    exec_arg(&v->reorder, DNNL_ARG_FROM, into_primitive ? have_mem : v->own);
    exec_arg(&v->reorder, DNNL_ARG_TO, into_primitive ? v->own : have_mem);
    dnnl_primitive_desc_destroy(pd);
}

void view_sync(const view_t *v, const dnal_ctx *ctx)
{
    if (v->reorder.prim)
        exec_run(&v->reorder, ctx);
}

void view_free(view_t *v)
{
    exec_free(&v->reorder);
    if (v->own)
        dnnl_memory_destroy(v->own);
    v->own = v->mem = NULL;
}

/* --------------------------------------------------------------- tensors */

void dnal_tensor_grad_add(const dnal_tensor *t, const void *src)
{
    size_t n = dnal_md_bytes(&t->md) / elt_bytes(&t->md);
    if (!dnal_md_is_bf16(&t->md)) {
        float *restrict d = mem_ptr(t->diff);
        const float *restrict s = src;
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++)
            d[i] += s[i];
        return;
    }
    uint16_t *restrict d = mem_ptr(t->diff);
    const uint16_t *restrict s = src;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++)
        d[i] = f32_to_bf16(bf16_to_f32(d[i]) + bf16_to_f32(s[i]));
}

size_t dnal_tensor_count(const dnal_tensor *t)
{
    return (size_t)(t->n * t->c * t->h * t->w);
}

float *dnal_tensor_data(const dnal_tensor *t)
{
    return mem_ptr(t->mem);
}

float *dnal_tensor_grad(const dnal_tensor *t)
{
    return mem_ptr(t->diff);
}

static void plain_copy(const dnal_ctx *ctx, const dnal_tensor *t, dnnl_memory_t m,
                       float *nchw, int to_tensor)
{
    int64_t dims[4] = {t->n, t->c, t->h, t->w};
    dnal_md plain = dnal_md_plain(t->ndims, dims);
    dnnl_memory_t pm = dnal_memory(ctx, &plain, nchw);
    dnal_pd pd = to_tensor ? dnal_pd_reorder(ctx, &plain, &t->md) : dnal_pd_reorder(ctx, &t->md, &plain);
    size_t sbytes = dnal_pd_scratch_bytes(pd);
    void *scratch = sbytes ? dnal_alloc(sbytes) : NULL;
    exec_t e;
    exec_init(&e, ctx, pd, scratch);
    exec_arg(&e, DNNL_ARG_FROM, to_tensor ? pm : m);
    exec_arg(&e, DNNL_ARG_TO, to_tensor ? m : pm);
    exec_run(&e, ctx);
    DNNL_CHECK(dnnl_stream_wait(ctx->stream));
    exec_free(&e);
    dnal_free(scratch);
    dnnl_primitive_desc_destroy(pd);
    dnnl_memory_destroy(pm);
}

void dnal_tensor_write(const dnal_ctx *ctx, dnal_tensor *t, int diff, const float *nchw)
{
    plain_copy(ctx, t, diff ? t->diff : t->mem, (float *)nchw, 1);
}

void dnal_tensor_read(const dnal_ctx *ctx, const dnal_tensor *t, int diff, float *nchw)
{
    plain_copy(ctx, t, diff ? t->diff : t->mem, nchw, 0);
}
