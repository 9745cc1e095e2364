/* Softmax cross-entropy over logits N x K: loss = mean_n (logsumexp(z_n) - z_n[y_n]),
 * d(logits) = (softmax(z) - onehot(y)) / N. Also counts top-1 and top-5 hits. */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

typedef struct ce_layer {
    dnal_layer base;
    dnal_chan_view v;
    const int32_t *labels;
    int64_t rows; /* counted in forward */
    dnal_ce_result result;
} ce_layer;

static void ce_bind(dnal_layer *l, const dnal_ctx *ctx, const dnal_buffers *b)
{
    (void)l;
    (void)ctx;
    (void)b;
}

static const float *row(const ce_layer *e, const float *z, int64_t n)
{
    return z + n * e->v.sn;
}

static void ce_forward(dnal_layer *l, const dnal_ctx *ctx, const dnal_pass *p)
{
    ce_layer *e = (ce_layer *)l;
    (void)p;
    DNAL_ASSERT(e->labels != NULL);
    DNNL_CHECK(dnnl_stream_wait(ctx->stream));
    const float *z = mem_ptr(l->in[0]->mem);
    const int64_t N = e->rows, K = e->v.c;
    for (int64_t n = 0; n < N; n++)
        if (e->labels[n] < 0 || e->labels[n] >= K)
            dnal_fatal(DNAL_EXIT_DATA, "%s: label %d of sample %lld is outside 0..%lld", l->name,
                       e->labels[n], (long long)n, (long long)K - 1);
    double loss = 0.0;
    int64_t c1 = 0, c5 = 0;
#pragma omp parallel for reduction(+ : loss, c1, c5) schedule(static)
    for (int64_t n = 0; n < N; n++) {
        const float *zn = row(e, z, n);
        int32_t y = e->labels[n];
        float mx = zn[0];
        for (int64_t k = 1; k < K; k++)
            mx = zn[k] > mx ? zn[k] : mx;
        double sum = 0.0;
        int64_t above = 0; /* classes scored strictly above the label, ties go to lower index */
        for (int64_t k = 0; k < K; k++) {
            sum += exp((double)zn[k] - mx);
            above += zn[k] > zn[y] || (zn[k] == zn[y] && k < y);
        }
        loss += log(sum) + mx - zn[y];
        c1 += above < 1;
        c5 += above < 5;
    }
    e->result.loss = loss / (double)N;
    e->result.correct1 = c1;
    e->result.correct5 = c5;
}

static void ce_backward(dnal_layer *l, const dnal_ctx *ctx, const dnal_pass *p)
{
    ce_layer *e = (ce_layer *)l;
    (void)p;
    DNNL_CHECK(dnnl_stream_wait(ctx->stream));
    const float *z = mem_ptr(l->in[0]->mem);
    float *dz = mem_ptr(l->in_diff[0]);
    const int64_t N = e->v.n, K = e->v.c;
    const double inv_n = 1.0 / (double)N;
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++) {
        const float *zn = row(e, z, n);
        float *dn = dz + n * e->v.sn;
        float mx = zn[0];
        for (int64_t k = 1; k < K; k++)
            mx = zn[k] > mx ? zn[k] : mx;
        double sum = 0.0;
        for (int64_t k = 0; k < K; k++)
            sum += exp((double)zn[k] - mx);
        for (int64_t k = 0; k < K; k++) {
            double pk = exp((double)zn[k] - mx) / sum;
            dn[k] = (float)((pk - (k == e->labels[n])) * inv_n);
        }
    }
}

static void ce_destroy(dnal_layer *l)
{
    free(l);
}

static const dnal_layer_ops ce_ops = {ce_bind, ce_forward, ce_backward, ce_destroy};

dnal_layer *dnal_softmax_ce_create(const dnal_ctx *ctx, const char *name, dnal_tensor *logits)
{
    ce_layer *e = layer_new(sizeof *e, &ce_ops, DNAL_SOFTMAX_CE, name, logits, NULL, NULL);
    dnal_layer *l = &e->base;
    (void)ctx;
    if (logits->ndims != 2 || !dnal_md_chan_view(&logits->md, &e->v) || e->v.cb != 1 ||
        e->v.sc != 1) {
        char s[32];
        dnal_fatal(DNAL_EXIT_USAGE, "%s: logits must be N x K row-major, got %s", l->name,
                   dnal_md_layout_str(&logits->md, s, sizeof s));
    }
    e->rows = e->v.n;
    return l;
}

void dnal_softmax_ce_set_rows(dnal_layer *l, int64_t rows)
{
    ce_layer *e = (ce_layer *)l;
    DNAL_ASSERT(l->kind == DNAL_SOFTMAX_CE && rows >= 1 && rows <= e->v.n);
    e->rows = rows;
}

void dnal_softmax_ce_set_labels(dnal_layer *l, const int32_t *labels)
{
    DNAL_ASSERT(l->kind == DNAL_SOFTMAX_CE);
    ((ce_layer *)l)->labels = labels;
}

dnal_ce_result dnal_softmax_ce_result(const dnal_layer *l)
{
    DNAL_ASSERT(l->kind == DNAL_SOFTMAX_CE);
    return ((const ce_layer *)l)->result;
}
