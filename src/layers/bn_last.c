/* Batch normalisation over dense channels-last (NHWC) data: dnal's own
 * kernel for the batch-norm layer (batchnorm.c) where oneDNN 2.6 has only
 * its generic C++ kernel, i.e. NHWC with channels not a multiple of 4 (the
 * widths of pruned networks): 10-50x slower than its JIT kernels (a resnet56
 * pruned to odd widths spent 314 of 545 ms a step in it, batch 128, AVX-512).
 *
 * The data are taken as rows of ROW pixels x C channels. Every loop runs
 * along a whole row with coefficients per row position (a channel's value
 * repeated at its ROW positions), so it vectorises whatever C is; threads
 * split the rows and keep sums of their own, folded into channels after.
 * Sums are in double, so var = E[x^2] - mean^2 and sum dy (x - mean) =
 * sum dy x - mean sum dy lose nothing that float data carry.
 *
 *   forward:  y = x a + b,  a = scale / sqrt(var + eps),  b = shift - mean a
 *   backward: dshift = sum dy,  dscale = sum dy (x - mean) / sqrt(var + eps),
 *             dx = a (dy - dshift / M - (x - mean) dscale / (M sqrt(var + eps)))
 *                = dy a + x d + b'  (coefficients per channel; M pixels)
 * With a fused ReLU the forward clamps y at 0 and the backward takes dy
 * only where y > 0 (the ReLU's derivative, read from y itself). bf16 data
 * are widened row by row into per-thread f32 rows and the results rounded
 * back; every sum stays f32 or double. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <omp.h>

#include "internal.h"

enum { ROW = 16, STAGE_ROWS = 4 /* bf16: u, v, y and out rows of each thread */ };

void bn_last_plan(bn_last *k, dnal_layer *l, int64_t pixels, int64_t c, int bf16)
{
    k->pixels = pixels;
    k->c = c;
    k->w = ROW * c;
    k->bf16 = bf16;
    k->nthreads = omp_get_max_threads();
    size_t stage = bf16 ? (size_t)(STAGE_ROWS * k->nthreads * k->w) : 0;
    k->off = layer_priv(l, sizeof(double) * (size_t)(2 * k->nthreads * k->w + 2 * c) +
                               sizeof(float) * ((size_t)(3 * k->w) + stage));
}

void bn_last_bind(bn_last *k, char *priv)
{
    k->part = (double *)(priv + k->off);
    k->su = k->part + 2 * k->nthreads * k->w;
    k->suv = k->su + k->c;
    k->a = (float *)(k->suv + k->c);
    k->b = k->a + k->w;
    k->d = k->b + k->w;
    k->stage = k->bf16 ? k->d + k->w : NULL;
}

/* Row r of a tensor as f32: the row itself, or (bf16) its copy in this
 * thread's staging slot (u, v, y or out) */
static const float *row_in(const bn_last *k, const void *p, int64_t r, int64_t len, int slot)
{
    if (!p)
        return NULL;
    if (!k->bf16)
        return (const float *)p + r * k->w;
    float *s = k->stage + (STAGE_ROWS * omp_get_thread_num() + slot) * k->w;
    row_load(s, (const uint16_t *)p + r * k->w, len);
    return s;
}

static int64_t n_rows(const bn_last *k)
{
    return (k->pixels + ROW - 1) / ROW;
}

/* elements in row r (the last row may hold fewer pixels) */
static int64_t row_len(const bn_last *k, int64_t r)
{
    int64_t left = k->pixels * k->c - r * k->w;
    return left < k->w ? left : k->w;
}

/* u[i] where the ReLU output y[i] is positive, else 0, as a bit mask: a
 * select or a multiply keeps GCC's loops scalar */
static inline float relu_masked(const float *u, const float *y, int64_t i)
{
    uint32_t bits, mask = -(uint32_t)(y[i] > 0.0f);
    float r;
    memcpy(&bits, &u[i], sizeof bits);
    bits &= mask;
    memcpy(&r, &bits, sizeof r);
    return r;
}

/* per channel: su = sum u, suv = sum u * v over all pixels; u counts only
 * where y > 0 (y NULL: everywhere) */
static void channel_sums(const bn_last *k, const void *u, const void *v, const void *y)
{
    const int64_t w = k->w, rows = n_rows(k);
    memset(k->part, 0, sizeof(double) * (size_t)(2 * k->nthreads * w));
#pragma omp parallel num_threads(k->nthreads)
    {
        double *pu = k->part + 2 * omp_get_thread_num() * w, *puv = pu + w;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            const int64_t len = row_len(k, r);
            const float *ur = row_in(k, u, r, len, 0), *vr = row_in(k, v, r, len, 1);
            if (y) {
                const float *yr = row_in(k, y, r, len, 2);
#pragma omp simd
                for (int64_t i = 0; i < len; i++) {
                    float ui = relu_masked(ur, yr, i);
                    pu[i] += ui;
                    puv[i] += (double)ui * vr[i];
                }
            } else {
#pragma omp simd
                for (int64_t i = 0; i < len; i++) {
                    pu[i] += ur[i];
                    puv[i] += (double)ur[i] * vr[i];
                }
            }
        }
    }
    for (int64_t c = 0; c < k->c; c++) {
        k->su[c] = k->suv[c] = 0.0;
        for (int t = 0; t < k->nthreads; t++)
            for (int64_t p = 0; p < ROW; p++) {
                k->su[c] += k->part[2 * t * w + p * k->c + c];
                k->suv[c] += k->part[2 * t * w + w + p * k->c + c];
            }
    }
}

/* out = u a + v d + b, coefficients per row position; u counts only where
 * y > 0 (y NULL: everywhere); relu: out clamped at 0 */
static void affine(const bn_last *k, const void *u, const void *v, const void *y, int relu,
                   void *out)
{
    const int64_t w = k->w, rows = n_rows(k);
    const float *a = k->a, *b = k->b, *d = k->d;
#pragma omp parallel for num_threads(k->nthreads) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const int64_t len = row_len(k, r);
        const float *ur = row_in(k, u, r, len, 0), *vr = row_in(k, v, r, len, 1);
        const float *yr = row_in(k, y, r, len, 2);
        float *o = k->bf16 ? k->stage + (STAGE_ROWS * omp_get_thread_num() + 3) * w
                           : (float *)out + r * w;
        if (relu) { /* a select, not fmaxf: that one has NaN rules that keep it scalar */
#pragma omp simd
            for (int64_t i = 0; i < len; i++) {
                float t = ur[i] * a[i] + vr[i] * d[i] + b[i];
                o[i] = t > 0.0f ? t : 0.0f;
            }
        } else if (yr) {
#pragma omp simd
            for (int64_t i = 0; i < len; i++)
                o[i] = relu_masked(ur, yr, i) * a[i] + vr[i] * d[i] + b[i];
        } else {
#pragma omp simd
            for (int64_t i = 0; i < len; i++)
                o[i] = ur[i] * a[i] + vr[i] * d[i] + b[i];
        }
        if (k->bf16)
            row_store((uint16_t *)out + r * w, o, len);
    }
}

/* the coefficients of channel c at its ROW positions */
static void set_coef(const bn_last *k, int64_t c, float a, float b, float d)
{
    for (int64_t p = 0; p < ROW; p++) {
        k->a[p * k->c + c] = a;
        k->b[p * k->c + c] = b;
        k->d[p * k->c + c] = d;
    }
}

void bn_last_forward(const bn_last *k, int training, int relu, const void *x, void *y,
                     const float *scale, const float *shift, float *mean, float *var, float eps)
{
    if (training) {
        channel_sums(k, x, x, NULL);
        for (int64_t c = 0; c < k->c; c++) {
            double m = k->su[c] / (double)k->pixels;
            mean[c] = (float)m;
            var[c] = (float)fmax(k->suv[c] / (double)k->pixels - m * m, 0.0);
        }
    }
    for (int64_t c = 0; c < k->c; c++) {
        float a = scale[c] / sqrtf(var[c] + eps);
        set_coef(k, c, a, shift[c] - mean[c] * a, 0.0f);
    }
    affine(k, x, x, NULL, relu, y);
}

void bn_last_backward(const bn_last *k, const void *x, const void *relu_y, const void *dy,
                      void *dx, const float *scale, const float *mean, const float *var,
                      float *dscale, float *dshift, float eps)
{
    const double m = (double)k->pixels;
    channel_sums(k, dy, x, relu_y);
    for (int64_t c = 0; c < k->c; c++) {
        double inv = 1.0 / sqrt((double)var[c] + eps), a = scale[c] * inv;
        double ds = k->su[c], dsc = (k->suv[c] - mean[c] * k->su[c]) * inv;
        dshift[c] = (float)ds;
        dscale[c] = (float)dsc;
        double d = -a * dsc * inv / m; /* dx = a dy + d (x - mean) - a ds / m */
        set_coef(k, c, (float)a, (float)(-d * mean[c] - a * ds / m), (float)d);
    }
    affine(k, dy, x, relu_y, 0, dx);
}
