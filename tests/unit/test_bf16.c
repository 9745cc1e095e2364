/* Every layer case in bf16 against the same case in f32 (run.dtype=bf16),
 * on a CPU where oneDNN runs bf16 (TAP skips naming the ISA elsewhere).
 *
 * Both nets get the same inputs, parameters, alpha and output gradient, all
 * bf16-exact values, so what differs is bf16's arithmetic alone: the
 * weights' working copy is exact, each activation and activation gradient
 * rounds to 8 significant bits (2^-9 of its value at most) as a layer
 * writes it, and parameter gradients, statistics and alpha gradients are
 * summed in f32. Compared per tensor: the forward output, d(input), every
 * parameter gradient, alpha's gradient and the running statistics, by
 *   |bf16 - f32|_2 / |f32|_2
 * the norm and not the largest element: at a ReLU kink that a rounded
 * input crosses, one element's gradient is dy or 0.
 * One weighted layer (or a fused chain over one BN): <= 2^-6 (measured <= 3e-3,
 * near the 2^-9 of one rounding). Two convolutions (the residual blocks):
 * <= 2^-3 (measured up to 6.5e-2 on the blocks, 9e-2 with a third of the
 * channels masked): the second convolution reads rounded activations, and
 * the gradients reaching the first are differences of rounded values
 * twice over: each BN's backward subtracts the channel means of dy and of
 * dy x-hat, and sums of products of mixed sign (weight and alpha
 * gradients) lose to cancellation what the terms carried. Fused and
 * unfused, in the case's layout and (4-D) in channels last. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "harness.h"
#include "tap.h"

static const double TOL_LAYER = 0x1p-6, TOL_BLOCK = 0x1p-3;
static double tol;

/* rounds to the nearest bf16 (even on a tie), kept as f32 */
static float to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void fill_bf16(float *x, size_t n, double lo, double hi, uint64_t *state)
{
    h_fill(x, n, lo, hi, state);
    for (size_t i = 0; i < n; i++)
        x[i] = to_bf16(x[i]);
}

static void compare(const char *cname, const char *what, const float *b16, const float *f32,
                    size_t n)
{
    double sd = 0, sr = 0, md = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)b16[i] - f32[i];
        sd += d * d;
        sr += (double)f32[i] * f32[i];
        md = fmax(md, fabs(d));
    }
    double rel = sqrt(sd / fmax(sr, 1e-30));
    tap_ok(rel <= tol, "bf16 %s: %s l2 rel %.2e (max abs diff %.2e, tolerance %.1e)", cname,
           what, rel, md, tol);
}

/* the same random state for both nets: parameters, alpha, BN statistics */
static void init(dnal_net *net, uint64_t seed)
{
    uint64_t s = seed;
    for (int i = 0; i < net->n_layers; i++) {
        dnal_layer *l = net->layers[i];
        for (int k = 0; k < l->n_params; k++) {
            int norm = l->param[k].role == DNAL_PARAM_NORM;
            fill_bf16(dnal_net_param(net, l, k), l->param[k].count, norm ? 0.5 : -0.5,
                      norm ? 1.5 : 0.5, &s);
        }
        if (l->kind == DNAL_GATE)
            fill_bf16(net->alpha + l->gate_off, l->n_gates, -1, 1, &s);
    }
}

static void run_case(const dnal_ctx *c32, const dnal_ctx *c16, const layer_case *lc,
                     const char *layout, int fuse)
{
    char cname[64];
    snprintf(cname, sizeof cname, "%s%s%s%s", lc->name, layout ? " " : "", layout ? layout : "",
             fuse ? "" : " unfused");
    dnal_net *a = case_net_fuse(c32, lc, layout, fuse), *b = case_net_fuse(c16, lc, layout, fuse);
    int convs = 0;
    for (int i = 0; i < a->n_layers; i++)
        convs += a->layers[i]->kind == DNAL_CONV || a->layers[i]->kind == DNAL_LINEAR;
    tol = convs > 1 ? TOL_BLOCK : TOL_LAYER;
    init(a, 7);
    init(b, 7);
    size_t nx = dnal_tensor_count(a->input);
    dnal_tensor *ya = h_output(a), *yb = h_output(b);
    size_t ny = ya ? dnal_tensor_count(ya) : 0, nb = nx > ny ? nx : ny;
    float *x = malloc(nx * sizeof *x), *dy = malloc((ny ? ny : 1) * sizeof *dy);
    float *ba = malloc(nb * sizeof *ba), *bb = malloc(nb * sizeof *bb);
    int32_t labels[64];
    uint64_t s = 11;
    fill_bf16(x, nx, -1, 1, &s);
    fill_bf16(dy, ny, -1, 1, &s);
    for (int i = 0; i < 64; i++)
        labels[i] = i % 10;
    h_set_input(a, x);
    h_set_input(b, x);
    if (a->loss) {
        dnal_net_set_labels(a, labels);
        dnal_net_set_labels(b, labels);
    }
    dnal_pass p = {.training = 1, .gate_mode = DNAL_GATE_SEARCH, .beta = 2};
    dnal_net_forward(a, &p);
    dnal_net_forward(b, &p);
    if (ya) {
        dnal_tensor_read(c32, ya, 0, ba);
        dnal_tensor_read(c16, yb, 0, bb);
        compare(cname, "y", bb, ba, ny);
    } else {
        float la = (float)dnal_softmax_ce_result(a->loss).loss;
        float lb = (float)dnal_softmax_ce_result(b->loss).loss;
        compare(cname, "loss", &lb, &la, 1);
    }
    h_backward(a, &p, dy);
    h_backward(b, &p, dy);
    dnal_tensor_read(c32, a->input, 1, ba);
    dnal_tensor_read(c16, b->input, 1, bb);
    compare(cname, "dx", bb, ba, nx);
    for (int i = 0; i < a->n_layers; i++) {
        dnal_layer *la = a->layers[i], *lb = b->layers[i];
        char what[96];
        for (int k = 0; k < la->n_params; k++) {
            snprintf(what, sizeof what, "d(%s.%s)", la->name, la->param[k].name);
            compare(cname, what, dnal_net_param_grad(b, lb, k), dnal_net_param_grad(a, la, k),
                    la->param[k].count);
        }
        if (la->kind == DNAL_GATE) {
            snprintf(what, sizeof what, "d(%s.alpha)", la->name);
            compare(cname, what, b->alpha_grad + lb->gate_off, a->alpha_grad + la->gate_off,
                    la->n_gates);
        }
        if (la->kind == DNAL_BN) {
            snprintf(what, sizeof what, "%s running statistics", la->name);
            compare(cname, what, b->stats + lb->stats_off, a->stats + la->stats_off, la->n_stats);
        }
    }
    free(x);
    free(dy);
    free(ba);
    free(bb);
    dnal_net_destroy(a);
    dnal_net_destroy(b);
}

int main(void)
{
    dnal_ctx *c32 = dnal_ctx_create(), *c16 = dnal_ctx_create();
    if (dnal_bf16_supported(c16) == DNAL_BF16_NONE) {
        tap_skip("bf16 layers against f32: oneDNN creates no bf16 primitives on ISA %s "
                 "(needs avx512_core)", dnal_isa_name());
        return tap_done();
    }
    DNAL_ASSERT(dnal_ctx_set_dtype(c16, dnnl_bf16));
    for (int fuse = 1; fuse >= 0; fuse--)
        for (int i = 0; i < n_layer_cases; i++) {
            const layer_case *lc = &layer_cases[i];
            if (!fuse && !lc->fused_gates && !lc->fused_relus)
                continue;
            run_case(c32, c16, lc, NULL, fuse);
            if (lc->ndims == 4)
                run_case(c32, c16, lc, "nhwc", fuse);
        }
    dnal_ctx_destroy(c32);
    dnal_ctx_destroy(c16);
    return tap_done();
}
