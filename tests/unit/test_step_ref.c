/* SGD steps of ResNet-20 (1x28x28, batch 8) against PyTorch from the same
 * initial weights (tests/ref/resnet20_step.h5, written by
 * tests/ref/make_step_fixture.py): the loss of two steps, every parameter's
 * change in the first step and the BN running statistics after it.
 *
 * Tolerance, per tensor: max |dnal - torch64| / max |torch64| must be within
 * 1e-4, or within twice what PyTorch's own float32 run shows for that tensor
 * (stored in the fixture): gradients that sum nearly cancelling terms (a BN
 * shift feeding another BN) carry float32 errors of a few percent in any
 * float32 implementation.
 *
 * Then the same steps with run.dtype=bf16 (on a CPU where oneDNN runs bf16;
 * a TAP skip naming the ISA elsewhere), held to what PyTorch's own bf16
 * autocast run of them shows against float64 (stored in the fixture): per
 * tensor within three times that error, or within 2^-6 of the tensor (on
 * an AVX512-BF16 machine the largest ratio to PyTorch's error was 1.85, a
 * BN shift whose 8 samples' gradient nearly cancels). bf16 keeps
 * 8 significant bits, and the two implementations round in different
 * places (PyTorch also runs the classifier in bf16, dnal keeps it in f32;
 * dnal's BN reads and writes bf16 and computes in f32, as oneDNN's does
 * inside PyTorch), so neither can be closer to float64 than bf16's own
 * noise, which the autocast run measures. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "dnal/models.h"
#include "dnal/search.h"
#include "tap.h"

static void *read_ds(hid_t f, const char *path, hid_t type, size_t size, size_t *n)
{
    hid_t d = H5_CHECK(H5Dopen2(f, path, H5P_DEFAULT));
    hid_t sp = H5_CHECK(H5Dget_space(d));
    hssize_t cnt = H5Sget_simple_extent_npoints(sp);
    void *buf = malloc((size_t)(cnt > 0 ? cnt : 1) * size);
    H5_CHECK(H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf));
    H5Sclose(sp);
    H5Dclose(d);
    *n = (size_t)cnt;
    return buf;
}

static double read_scalar(hid_t f, const char *path)
{
    size_t n;
    double *v = read_ds(f, path, H5T_NATIVE_DOUBLE, sizeof(double), &n);
    double x = n == 1 ? *v : NAN;
    free(v);
    return x;
}

/* the run being checked: f32 (held to PyTorch's float32 run) or bf16 (to
 * its bf16 autocast run) */
static const char *err_group = "fp32err";
static double tol_floor = 1e-4, tol_factor = 2;

/* the tolerance of expect/KEY: the floor, or a multiple of PyTorch's own error */
static double tolerance(hid_t f, const char *key)
{
    char path[256];
    snprintf(path, sizeof path, "expect/%s/%s", err_group, key);
    return fmax(tol_floor, tol_factor * read_scalar(f, path));
}

/* error of n values against expect/KEY, divided by the key's tolerance */
static double error_ratio(hid_t f, const char *key, const float *got, size_t n, double *rel)
{
    char path[256];
    size_t m;
    snprintf(path, sizeof path, "expect/%s", key);
    double *want = read_ds(f, path, H5T_NATIVE_DOUBLE, sizeof(double), &m);
    double d = 0, mx = 0;
    for (size_t i = 0; i < n && m == n; i++) {
        d = fmax(d, fabs((double)got[i] - want[i]));
        mx = fmax(mx, fabs(want[i]));
    }
    free(want);
    *rel = m == n ? d / fmax(mx, 1e-30) : INFINITY;
    return *rel / tolerance(f, key);
}

typedef struct worst {
    double ratio, rel, tol;
    char key[128];
    int count;
} worst;

static void track(worst *w, hid_t f, const char *key, const float *got, size_t n)
{
    double rel, ratio = error_ratio(f, key, got, n, &rel);
    if (getenv("STEP_DEBUG"))
        tap_diag("%s rel %.2e tolerance %.2e", key, rel, tolerance(f, key));
    if (ratio >= w->ratio || w->count == 0) {
        w->ratio = ratio;
        w->rel = rel;
        w->tol = tolerance(f, key);
        snprintf(w->key, sizeof w->key, "%s", key);
    }
    w->count++;
}

static void step(hid_t f, dnal_net *net, dnal_sgd *opt, int i)
{
    char key[64];
    size_t n;
    snprintf(key, sizeof key, "x%d", i);
    float *x = read_ds(f, key, H5T_NATIVE_FLOAT, sizeof(float), &n);
    memcpy(dnal_tensor_data(net->input), x, n * sizeof *x);
    snprintf(key, sizeof key, "y%d", i);
    int32_t *y = read_ds(f, key, H5T_NATIVE_INT32, sizeof(int32_t), &n);
    dnal_net_set_labels(net, y);
    dnal_pass pass = {.training = 1, .gate_mode = DNAL_GATE_OFF, .beta = 1};
    dnal_net_forward(net, &pass);
    float loss = (float)dnal_softmax_ce_result(net->loss).loss;
    double rel;
    snprintf(key, sizeof key, "loss%d", i);
    double ratio = error_ratio(f, key, &loss, 1, &rel);
    tap_ok(ratio <= 1, "%s step %d: loss %.7f, rel error %.1e (tolerance %.1e)",
           dnal_md_is_bf16(&net->layout) ? "bf16" : "f32", i, loss, rel, tolerance(f, key));
    dnal_net_backward(net, &pass, NULL, NULL);
    dnal_update_weights(net, opt, 0.1, 1e-4);
    free(x);
    free(y);
}

static void run_steps(const dnal_ctx *ctx, hid_t f)
{
    char path[256];
    const char *dt = ctx->dtype == dnnl_bf16 ? "bf16" : "f32";
    dnal_model_cfg cfg = {.name = "resnet20", .batch = 8, .in_channels = 1, .image_size = 28,
                          .classes = 10, .width = 1.0};
    dnal_net *net = dnal_model_build(ctx, &cfg);
    dnal_model_init(net, 1);
    int loaded = 0, wanted = 0;
    for (int i = 0; i < net->n_layers; i++) {
        dnal_layer *l = net->layers[i];
        for (int k = 0; k < l->n_params; k++, wanted++) {
            size_t n;
            snprintf(path, sizeof path, "param/%s/%s", l->name, l->param[k].name);
            float *v = read_ds(f, path, H5T_NATIVE_FLOAT, sizeof(float), &n);
            if (n == l->param[k].count) {
                memcpy(dnal_net_param(net, l, k), v, n * sizeof *v);
                loaded++;
            }
            free(v);
        }
    }
    tap_ok(loaded == wanted, "%s: all %d parameter tensors loaded by name (%d)", dt, wanted, loaded);
    float *before = malloc(sizeof *before * net->n_param);
    memcpy(before, net->param, sizeof *before * net->n_param);

    dnal_sgd opt;
    dnal_sgd_init(&opt, net->n_param, 0.9, 0);
    step(f, net, &opt, 1);

    worst params = {0}, stats = {0};
    float *delta = malloc(sizeof *delta * net->n_param);
    for (size_t j = 0; j < net->n_param; j++)
        delta[j] = net->param[j] - before[j];
    if (getenv("STEP_DUMP")) {
        FILE *d = fopen(getenv("STEP_DUMP"), "w");
        for (int i = 0; i < net->n_layers; i++)
            for (int k = 0; k < net->layers[i]->n_params; k++) {
                const dnal_param *p = &net->layers[i]->param[k];
                fprintf(d, "%s/%s %zu\n", net->layers[i]->name, p->name, p->count);
                for (size_t j = 0; j < p->count; j++)
                    fprintf(d, "%.9g\n", delta[p->off + j]);
            }
        fclose(d);
    }
    for (int i = 0; i < net->n_layers; i++) {
        dnal_layer *l = net->layers[i];
        char key[128];
        for (int k = 0; k < l->n_params; k++) {
            snprintf(key, sizeof key, "delta1/%s/%s", l->name, l->param[k].name);
            track(&params, f, key, delta + l->param[k].off, l->param[k].count);
        }
        if (l->kind == DNAL_BN) {
            size_t c = l->n_stats / 2;
            snprintf(key, sizeof key, "stats1/%s/mean", l->name);
            track(&stats, f, key, net->stats + l->stats_off, c);
            snprintf(key, sizeof key, "stats1/%s/var", l->name);
            track(&stats, f, key, net->stats + l->stats_off + c, c);
        }
    }
    tap_ok(params.ratio <= 1 && params.count == wanted,
           "%s step 1 changes all %d parameter tensors as PyTorch; closest to its tolerance: %s, "
           "rel error %.1e (tolerance %.1e)",
           dt, params.count, params.key, params.rel, params.tol);
    tap_ok(stats.ratio <= 1 && stats.count == 2 * 19,
           "%s: BN running statistics after step 1 (%d tensors); closest: %s, rel error %.1e "
           "(tolerance %.1e)",
           dt, stats.count, stats.key, stats.rel, stats.tol);
    step(f, net, &opt, 2); /* the loss of step 2 sees momentum and the new statistics */

    dnal_sgd_free(&opt);
    free(before);
    free(delta);
    dnal_net_destroy(net);
}

int main(void)
{
    const char *fixtures = getenv("FIXTURES");
    char path[1024];
    snprintf(path, sizeof path, "%s", fixtures ? fixtures : "tests/ref/fixtures.h5");
    char *slash = strrchr(path, '/');
    snprintf(slash ? slash + 1 : path, sizeof path - (size_t)(slash ? slash + 1 - path : 0),
             "resnet20_step.h5");
    dnal_h5_quiet();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (!tap_ok(f >= 0, "open %s", path))
        return tap_done();
    dnal_ctx *ctx = dnal_ctx_create();
    run_steps(ctx, f);
    if (dnal_bf16_supported(ctx) == DNAL_BF16_NONE) {
        tap_skip("bf16 steps against PyTorch's bf16 autocast: oneDNN creates no bf16 "
                 "primitives on ISA %s (needs avx512_core)", dnal_isa_name());
    } else {
        DNAL_ASSERT(dnal_ctx_set_dtype(ctx, dnnl_bf16));
        err_group = "bf16err";
        tol_floor = 0x1p-6;
        tol_factor = 3;
        run_steps(ctx, f);
    }
    dnal_ctx_destroy(ctx);
    H5Fclose(f);
    return tap_done();
}
