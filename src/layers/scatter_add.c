/* out = base + b at channel indices: out[:, idx[k]] += b[:, k].
 *
 * With base NULL the other channels are zero: the zero-padded ResNet
 * shortcut (option A) places the subsampled input at idx = pad..pad+C-1.
 * In a compact residual block the branch computes only its kept channels
 * and this layer adds them into the shortcut at their original indices.
 * Backward: d(base) = d(out); d(b)[:, k] = d(out)[:, idx[k]]. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct scatter_layer {
    dnal_layer base;
    dnal_chan_view vb, vo; /* views of b and of out */
    int64_t *idx;
    int64_t *off_b, *off_o; /* offset of b's channel k, and of out's channel idx[k] */
    size_t out_bytes;
} scatter_layer;

static void scatter_bind(dnal_layer *l, const dnal_ctx *ctx, const dnal_buffers *b)
{
    (void)l;
    (void)ctx;
    (void)b;
}

static int64_t channel_offset(const dnal_chan_view *v, int64_t c)
{
    return (c / v->cb) * v->sc + c % v->cb;
}

/* one position's channels: o[off_o[k]] += b[off_b[k]] (gather 0) or
 * b[off_b[k]] = o[off_o[k]] (gather 1), f32 or bf16 (summed in f32, rounded
 * once) */
static inline void move_pixel(const scatter_layer *s, char *o, char *b, int gather)
{
    const int64_t *off_o = s->off_o, *off_b = s->off_b, nc = s->vb.c;
    if (s->vb.bf16) {
        uint16_t *o16 = (uint16_t *)o, *b16 = (uint16_t *)b;
        for (int64_t k = 0; k < nc; k++)
            if (gather)
                b16[off_b[k]] = o16[off_o[k]];
            else
                o16[off_o[k]] = f32_to_bf16(bf16_to_f32(o16[off_o[k]]) + bf16_to_f32(b16[off_b[k]]));
        return;
    }
    float *o32 = (float *)o, *b32 = (float *)b;
    if (gather)
        for (int64_t k = 0; k < nc; k++)
            b32[off_b[k]] = o32[off_o[k]];
    else
        for (int64_t k = 0; k < nc; k++)
            o32[off_o[k]] += b32[off_b[k]];
}

/* out[:, idx[k]] += b[:, k] (gather 0) or db[:, k] = dy[:, idx[k]] (gather 1).
 * Channels innermost: in a blocked layout neighbouring channels share cache
 * lines, so each line is read once per position. */
static void move(const scatter_layer *s, void *big, void *small, int gather)
{
    const dnal_chan_view *vb = &s->vb, *vo = &s->vo;
    const int64_t es = vb->bf16 ? 2 : 4; /* bytes of an element */
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < vb->n; n++)
        for (int64_t h = 0; h < vb->h; h++)
            for (int64_t w = 0; w < vb->w; w++)
                move_pixel(s, (char *)big + es * (n * vo->sn + h * vo->sh + w * vo->sw),
                           (char *)small + es * (n * vb->sn + h * vb->sh + w * vb->sw), gather);
}

static void scatter_forward(dnal_layer *l, const dnal_ctx *ctx, const dnal_pass *p)
{
    scatter_layer *s = (scatter_layer *)l;
    (void)p;
    DNNL_CHECK(dnnl_stream_wait(ctx->stream));
    void *out = mem_ptr(l->out->mem);
    void *b = mem_ptr(l->in[0]->mem);
    if (l->n_in == 2)
        copy_parallel(out, mem_ptr(l->in[1]->mem), s->out_bytes);
    else
        zero_parallel(out, s->out_bytes);
    move(s, out, b, 0);
}

static void scatter_backward(dnal_layer *l, const dnal_ctx *ctx, const dnal_pass *p)
{
    scatter_layer *s = (scatter_layer *)l;
    (void)p;
    DNNL_CHECK(dnnl_stream_wait(ctx->stream));
    void *dy = mem_ptr(l->out->diff);
    if (l->n_in == 2 && l->in_diff[1])
        copy_parallel(mem_ptr(l->in_diff[1]), dy, s->out_bytes);
    if (!l->in_diff[0])
        return;
    move(s, dy, mem_ptr(l->in_diff[0]), 1);
}

static void scatter_destroy(dnal_layer *l)
{
    scatter_layer *s = (scatter_layer *)l;
    free(s->idx);
    free(s->off_b);
    free(s->off_o);
    free(s);
}

static const dnal_layer_ops scatter_ops = {scatter_bind, scatter_forward, scatter_backward,
                                           scatter_destroy};

dnal_layer *dnal_scatter_add_create(const dnal_ctx *ctx, const char *name, dnal_tensor *b,
                                    dnal_tensor *base, int64_t out_c, const int64_t *idx,
                                    dnal_tensor *out)
{
    scatter_layer *s = layer_new(sizeof *s, &scatter_ops, DNAL_SCATTER_ADD, name, b, base, out);
    dnal_layer *l = &s->base;
    (void)ctx;
    dnal_md omd = base ? base->md : dnal_md_with_channels(&b->md, out_c);
    if (!dnal_md_chan_view(&b->md, &s->vb) || !dnal_md_chan_view(&omd, &s->vo) ||
        (base && base->c != out_c) || b->h != s->vo.h || b->w != s->vo.w ||
        s->vb.bf16 != s->vo.bf16)
        dnal_fatal(DNAL_EXIT_USAGE, "%s: inputs do not fit a %lld-channel output", l->name,
                   (long long)out_c);
    s->idx = dnal_alloc(sizeof *s->idx * (size_t)b->c);
    s->off_b = dnal_alloc(sizeof *s->off_b * (size_t)b->c);
    s->off_o = dnal_alloc(sizeof *s->off_o * (size_t)b->c);
    for (int64_t k = 0; k < b->c; k++) {
        if (idx[k] < 0 || idx[k] >= out_c || (k > 0 && idx[k] <= idx[k - 1]))
            dnal_fatal(DNAL_EXIT_USAGE, "%s: channel indices must increase within 0..%lld",
                       l->name, (long long)out_c - 1);
        s->idx[k] = idx[k];
        s->off_b[k] = channel_offset(&s->vb, k);
        s->off_o[k] = channel_offset(&s->vo, idx[k]);
    }
    tensor_set(out, &omd);
    s->out_bytes = dnal_md_bytes(&omd);
    return l;
}

const int64_t *dnal_scatter_add_indices(const dnal_layer *l)
{
    DNAL_ASSERT(l->kind == DNAL_SCATTER_ADD);
    return ((const scatter_layer *)l)->idx;
}
