/* The DNAL gate (docs/design.md, "The method"), working directly on the activation's
 * layout (plain or channel-blocked):
 *
 *   y[n,c,h,w] = x[n,c,h,w] * g_c
 *   search: g_c = sigmoid(beta * alpha_c) * m_c;  pruned: g_c = m_c;  off: g_c = 1
 *   dx = dy * g_c
 *   dL/dalpha_c = beta * s (1 - s) * m_c * sum_{n,h,w} dy * x   (search mode; else 0)
 *
 * The alpha-gradient reduction is fused into the backward pass: each thread
 * owns whole channel blocks, so the sums need no atomics. Padded channels of
 * a blocked layout get g = 0 and stay zero. In channels last (NHWC) threads
 * split the pixels instead (a thread owning channels would read one float
 * of every cache line) and sum into rows of their own, added up after. */
#include <math.h>
#include <stdlib.h>

#include <omp.h>

#include "internal.h"

typedef struct gate_layer {
    dnal_layer base;
    dnal_chan_view v;
    int last;        /* channels last: pixel after pixel, C channels each */
    int nthreads;    /* channels last: rows of partial sums */
    size_t g_off, s_off, part_off;
    float *g;        /* cpad gate values of the last forward */
    float *s;        /* cpad sigmoid(beta * alpha) of the last forward */
    double *part;    /* channels last or bf16: nthreads x cpad partial sums of dy * x */
    float *alpha, *dalpha, *mask;
} gate_layer;

static void gate_bind(dnal_layer *l, const dnal_ctx *ctx, const dnal_buffers *b)
{
    gate_layer *t = (gate_layer *)l;
    (void)ctx;
    t->g = (float *)(b->priv + t->g_off);
    t->s = (float *)(b->priv + t->s_off);
    t->part = t->last || t->v.bf16 ? (double *)(b->priv + t->part_off) : NULL;
    t->alpha = b->alpha + l->gate_off;
    t->dalpha = b->alpha_grad + l->gate_off;
    t->mask = b->mask + l->gate_off;
}

void gate_eval(const dnal_pass *p, const float *alpha, const float *mask, int64_t c, float *s,
               float *g)
{
    for (int64_t k = 0; k < c; k++) {
        s[k] = (float)dnal_gate_sigmoid(p->beta, alpha[k]);
        g[k] = dnal_gate_value(p->gate_mode, p->beta, alpha[k], mask[k]);
    }
}

static void gate_values(gate_layer *t, const dnal_pass *p)
{
    const dnal_chan_view *v = &t->v;
    gate_eval(p, t->alpha, t->mask, v->c, t->s, t->g);
    for (int64_t c = v->c; c < v->cpad; c++) /* padded channels of a blocked layout stay 0 */
        t->s[c] = t->g[c] = 0.0f;
}

/* y = x * g over the view; dst and src may be the same layout's two buffers */
static void scale_channels(const dnal_chan_view *v, const float *g, const float *src, float *dst)
{
    const int64_t nblk = v->cpad / v->cb, cb = v->cb;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < v->n; n++)
        for (int64_t k = 0; k < nblk; k++) {
            const float *gk = g + k * cb;
            for (int64_t h = 0; h < v->h; h++)
                for (int64_t w = 0; w < v->w; w++) {
                    int64_t o = n * v->sn + k * v->sc + h * v->sh + w * v->sw;
                    for (int64_t j = 0; j < cb; j++)
                        dst[o + j] = src[o + j] * gk[j];
                }
        }
}

/* the same in channels last */
static void scale_pixels(const dnal_chan_view *v, const float *g, const float *src, float *dst)
{
    const int64_t np = v->n * v->h * v->w, c = v->c;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < np; i++)
        for (int64_t j = 0; j < c; j++)
            dst[i * c + j] = src[i * c + j] * g[j];
}

/* bf16 activations, in either layout: every pixel (n, h, w) holds runs of
 * contiguous channels, the blocks of a blocked layout (sc apart) or, in
 * channels last, one run of all C; channel = run * len + j */
typedef struct pixel_runs {
    int64_t pixels, runs, len, stride;
} pixel_runs;

static pixel_runs runs_of(const gate_layer *t)
{
    const dnal_chan_view *v = &t->v;
    pixel_runs r = {v->n * v->h * v->w, t->last ? 1 : v->cpad / v->cb, t->last ? v->c : v->cb,
                    v->sc};
    return r;
}

static int64_t pixel_offset(const dnal_chan_view *v, int64_t i)
{
    int64_t n = i / (v->h * v->w), hw = i % (v->h * v->w);
    return n * v->sn + (hw / v->w) * v->sh + (hw % v->w) * v->sw;
}

static void scale_bf16(const gate_layer *t, const uint16_t *src, uint16_t *dst)
{
    const pixel_runs r = runs_of(t);
    const float *g = t->g;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < r.pixels; i++) {
        int64_t o = pixel_offset(&t->v, i);
        for (int64_t k = 0; k < r.runs; k++) {
            int64_t b = o + k * r.stride, c0 = k * r.len;
            for (int64_t j = 0; j < r.len; j++)
                dst[b + j] = f32_to_bf16(bf16_to_f32(src[b + j]) * g[c0 + j]);
        }
    }
}

static void scale(const gate_layer *t, const void *src, void *dst)
{
    if (t->v.bf16)
        scale_bf16(t, src, dst);
    else if (t->last)
        scale_pixels(&t->v, t->g, src, dst);
    else
        scale_channels(&t->v, t->g, src, dst);
}

/* dL/dalpha_c from sum_{n,h,w} dy * x of channel c (search mode) */
static void set_dalpha(gate_layer *t, const dnal_pass *p, int64_t c, double sum)
{
    t->dalpha[c] = gate_dalpha(p, t->s[c], t->mask[c], sum);
}

static void gate_forward(dnal_layer *l, const dnal_ctx *ctx, const dnal_pass *p)
{
    gate_layer *t = (gate_layer *)l;
    DNNL_CHECK(dnnl_stream_wait(ctx->stream));
    gate_values(t, p);
    scale(t, mem_ptr(l->in[0]->mem), mem_ptr(l->out->mem));
}

/* search-mode backward in channels last */
static void backward_pixels(gate_layer *t, const dnal_pass *p, const float *x, const float *dy,
                            float *dx)
{
    const dnal_chan_view *v = &t->v;
    const int64_t np = v->n * v->h * v->w, c = v->c;
    const float *g = t->g;
    for (int64_t k = 0; k < t->nthreads * c; k++)
        t->part[k] = 0.0;
#pragma omp parallel num_threads(t->nthreads)
    {
        double *acc = t->part + omp_get_thread_num() * c;
#pragma omp for schedule(static)
        for (int64_t i = 0; i < np; i++) {
            for (int64_t j = 0; j < c; j++)
                acc[j] += dy[i * c + j] * x[i * c + j];
            for (int64_t j = 0; dx && j < c; j++)
                dx[i * c + j] = dy[i * c + j] * g[j];
        }
    }
    for (int64_t j = 0; j < c; j++) {
        double sum = 0.0;
        for (int k = 0; k < t->nthreads; k++)
            sum += t->part[k * c + j];
        set_dalpha(t, p, j, sum);
    }
}

/* search-mode backward over bf16 activations: each thread sums dy * x per
 * channel in f32 over its pixels, into a row of doubles of its own */
static void backward_bf16(gate_layer *t, const dnal_pass *p, const uint16_t *x, const uint16_t *dy,
                          uint16_t *dx)
{
    const pixel_runs r = runs_of(t);
    const int64_t cpad = t->v.cpad;
    const float *g = t->g;
    for (int64_t k = 0; k < t->nthreads * cpad; k++)
        t->part[k] = 0.0;
#pragma omp parallel num_threads(t->nthreads)
    {
        double *acc = t->part + omp_get_thread_num() * cpad;
#pragma omp for schedule(static)
        for (int64_t i = 0; i < r.pixels; i++) {
            int64_t o = pixel_offset(&t->v, i);
            for (int64_t k = 0; k < r.runs; k++) {
                int64_t b = o + k * r.stride, c0 = k * r.len;
                for (int64_t j = 0; j < r.len; j++) {
                    float d = bf16_to_f32(dy[b + j]);
                    acc[c0 + j] += d * bf16_to_f32(x[b + j]);
                    if (dx)
                        dx[b + j] = f32_to_bf16(d * g[c0 + j]);
                }
            }
        }
    }
    for (int64_t c = 0; c < t->v.c; c++) {
        double sum = 0.0;
        for (int k = 0; k < t->nthreads; k++)
            sum += t->part[k * cpad + c];
        set_dalpha(t, p, c, sum);
    }
}

static void gate_backward(dnal_layer *l, const dnal_ctx *ctx, const dnal_pass *p)
{
    gate_layer *t = (gate_layer *)l;
    const dnal_chan_view *v = &t->v;
    DNNL_CHECK(dnnl_stream_wait(ctx->stream));
    void *x = mem_ptr(l->in[0]->mem), *dy = mem_ptr(l->out->diff);
    void *dx = l->in_diff[0] ? mem_ptr(l->in_diff[0]) : NULL;
    if (p->gate_mode != DNAL_GATE_SEARCH) {
        for (int64_t c = 0; c < v->c; c++)
            t->dalpha[c] = 0.0f;
        if (dx)
            scale(t, dy, dx);
        return;
    }
    if (v->bf16) {
        backward_bf16(t, p, x, dy, dx);
        return;
    }
    if (t->last) {
        backward_pixels(t, p, x, dy, dx);
        return;
    }
    const int64_t nblk = v->cpad / v->cb, cb = v->cb;
    const float *xf = x, *dyf = dy;
    float *dxf = dx;
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < nblk; k++) {
        double acc[64] = {0}; /* cb <= 64, checked at create */
        float part[64];
        const float *gk = t->g + k * cb;
        for (int64_t n = 0; n < v->n; n++) {
            for (int64_t j = 0; j < cb; j++)
                part[j] = 0.0f;
            for (int64_t h = 0; h < v->h; h++)
                for (int64_t w = 0; w < v->w; w++) {
                    int64_t o = n * v->sn + k * v->sc + h * v->sh + w * v->sw;
                    for (int64_t j = 0; j < cb; j++) {
                        part[j] += dyf[o + j] * xf[o + j];
                        if (dxf)
                            dxf[o + j] = dyf[o + j] * gk[j];
                    }
                }
            for (int64_t j = 0; j < cb; j++)
                acc[j] += part[j];
        }
        for (int64_t j = 0; j < cb; j++) {
            int64_t c = k * cb + j;
            if (c < v->c)
                set_dalpha(t, p, c, acc[j]);
        }
    }
}

static void gate_destroy(dnal_layer *l)
{
    free(l);
}

static const dnal_layer_ops gate_ops = {gate_bind, gate_forward, gate_backward, gate_destroy};

dnal_layer *dnal_gate_create(const dnal_ctx *ctx, const char *name, dnal_tensor *in,
                             dnal_tensor *out)
{
    (void)ctx; /* dnal's own kernel: no oneDNN primitive */
    gate_layer *t = layer_new(sizeof *t, &gate_ops, DNAL_GATE, name, in, NULL, out);
    dnal_layer *l = &t->base;
    if (!dnal_md_chan_view(&in->md, &t->v) || t->v.cb > 64) {
        char s[32];
        dnal_fatal(DNAL_EXIT_USAGE, "%s: unsupported activation layout %s", l->name,
                   dnal_md_layout_str(&in->md, s, sizeof s));
    }
    l->n_gates = (size_t)in->c;
    t->g_off = layer_priv(l, sizeof(float) * (size_t)t->v.cpad);
    t->s_off = layer_priv(l, sizeof(float) * (size_t)t->v.cpad);
    t->last = dnal_md_is_channels_last(&in->md);
    if (t->last || t->v.bf16) {
        t->nthreads = omp_get_max_threads();
        t->part_off = layer_priv(l, sizeof(double) * (size_t)(t->nthreads * t->v.cpad));
    }
    tensor_set(out, &in->md);
    return l;
}
