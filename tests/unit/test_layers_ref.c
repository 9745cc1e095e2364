/* Every layer's forward output and gradients against PyTorch on the same
 * inputs (tests/ref/fixtures.h5, written by tests/ref/make_fixtures.py with
 * float64 references), including a whole ResNet basic block; every 4-D case
 * a second time in channels last (NHWC); the cases with fused layers (BN
 * with its gate and ReLU, add with its ReLU) also with every layer on its
 * own, and with a check of what was fused.
 *
 * Tolerance: max |dnal - torch| / max |torch| <= 1e-4 per tensor; the max
 * absolute difference is reported with each check. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "cases.h"
#include "harness.h"
#include "tap.h"

static const double TOL = 1e-4;

static int exists(hid_t g, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf;; p++) { /* every prefix must exist first */
        char c = *p;
        if (c == '/' || c == '\0') {
            *p = '\0';
            if (H5Lexists(g, buf, H5P_DEFAULT) <= 0)
                return 0;
            *p = c;
        }
        if (c == '\0')
            return 1;
    }
}

/* Reads a dataset into a new buffer of the given memory type; *n elements. */
static void *read_ds(hid_t g, const char *path, hid_t type, size_t size, size_t *n)
{
    hid_t d = H5_CHECK(H5Dopen2(g, path, H5P_DEFAULT));
    hid_t sp = H5_CHECK(H5Dget_space(d));
    hssize_t cnt = H5Sget_simple_extent_npoints(sp);
    void *buf = malloc((size_t)(cnt > 0 ? cnt : 1) * size);
    H5_CHECK(H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf));
    H5Sclose(sp);
    H5Dclose(d);
    *n = (size_t)cnt;
    return buf;
}

static void load_f32(hid_t g, const char *path, float *dst, size_t expect)
{
    size_t n;
    float *v = read_ds(g, path, H5T_NATIVE_FLOAT, sizeof(float), &n);
    DNAL_ASSERT(n == expect);
    memcpy(dst, v, n * sizeof *v);
    free(v);
}

static double attr_f64(hid_t g, const char *name)
{
    double v = 0;
    hid_t a = H5_CHECK(H5Aopen(g, name, H5P_DEFAULT));
    H5_CHECK(H5Aread(a, H5T_NATIVE_DOUBLE, &v));
    H5Aclose(a);
    return v;
}

static void attr_str(hid_t g, const char *name, char *out, size_t len)
{
    hid_t a = H5_CHECK(H5Aopen(g, name, H5P_DEFAULT));
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, len);
    memset(out, 0, len);
    H5_CHECK(H5Aread(a, t, out));
    H5Tclose(t);
    H5Aclose(a);
}

/* compares n values against the float64 reference at `path` */
static void compare(hid_t g, const char *cname, const char *what, const char *path,
                    const float *got, size_t n)
{
    size_t m;
    double *ref = read_ds(g, path, H5T_NATIVE_DOUBLE, sizeof(double), &m);
    double maxdiff = 0, maxref = 0;
    int same_size = m == n;
    for (size_t i = 0; same_size && i < n; i++) {
        maxdiff = fmax(maxdiff, fabs(got[i] - ref[i]));
        maxref = fmax(maxref, fabs(ref[i]));
    }
    double rel = maxdiff / fmax(maxref, 1e-12);
    tap_ok(same_size && rel <= TOL, "ref %s: %s max abs diff %.2e (rel %.2e)", cname, what,
           maxdiff, rel);
    free(ref);
}

/* layout NULL: the fixture's own; fuse 0: every layer on its own */
static void run_case(const dnal_ctx *ctx, hid_t file, const layer_case *lc, const char *layout_as,
                     int fuse)
{
    char path[256], layout[32], cname[64];
    if (!tap_ok(exists(file, lc->name), "fixture %s present", lc->name))
        return;
    hid_t g = H5_CHECK(H5Gopen2(file, lc->name, H5P_DEFAULT));
    attr_str(g, "layout", layout, sizeof layout);
    if (layout_as)
        snprintf(layout, sizeof layout, "%s", layout_as);
    snprintf(cname, sizeof cname, "%s%s%s%s", lc->name, layout_as ? " " : "",
             layout_as ? layout_as : "", fuse ? "" : " unfused");
    dnal_pass pass = {.training = (int)attr_f64(g, "train"),
                      .gate_mode = (dnal_gate_mode)attr_f64(g, "gate_mode"),
                      .beta = (float)attr_f64(g, "beta")};
    dnal_net *net = case_net_fuse(ctx, lc, layout, fuse);
    /* gates always fold; a ReLU fuses where oneDNN has a fast kernel for the
     * fused form, which depends on the ISA and the layout (in channels last
     * only some widths have one; under SSE4.1 one of a basic block's two
     * has none): else it runs as its own layer, so at most the expected */
    if (fuse && (lc->fused_gates || lc->fused_relus))
        tap_ok(net->n_fused_gates == lc->fused_gates && net->n_fused_relus <= lc->fused_relus,
               "fuse %s: %d gates folded into BN (expect %d), %d ReLUs fused (at most %d)", cname,
               net->n_fused_gates, lc->fused_gates, net->n_fused_relus, lc->fused_relus);
    for (int i = 0; i < net->n_layers; i++) {
        dnal_layer *l = net->layers[i];
        for (int k = 0; k < l->n_params; k++) {
            snprintf(path, sizeof path, "param/%s/%s", l->name, l->param[k].name);
            load_f32(g, path, dnal_net_param(net, l, k), l->param[k].count);
        }
        if (l->kind == DNAL_GATE) {
            snprintf(path, sizeof path, "alpha/%s", l->name);
            load_f32(g, path, net->alpha + l->gate_off, l->n_gates);
            snprintf(path, sizeof path, "mask/%s", l->name);
            load_f32(g, path, net->mask + l->gate_off, l->n_gates);
        }
        if (l->kind == DNAL_BN) {
            size_t c = l->n_stats / 2;
            snprintf(path, sizeof path, "stats/%s/mean", l->name);
            load_f32(g, path, net->stats + l->stats_off, c);
            snprintf(path, sizeof path, "stats/%s/var", l->name);
            load_f32(g, path, net->stats + l->stats_off + c, c);
        }
    }
    size_t nx = dnal_tensor_count(net->input), n;
    float *x = malloc(nx * sizeof *x);
    load_f32(g, "x", x, nx);
    h_set_input(net, x);
    int32_t *labels = NULL;
    if (net->loss) {
        labels = read_ds(g, "labels", H5T_NATIVE_INT32, sizeof(int32_t), &n);
        dnal_net_set_labels(net, labels);
    }
    dnal_tensor *y = h_output(net);
    size_t ny = y ? dnal_tensor_count(y) : 0;
    float *dy = NULL, *buf = malloc((nx > ny ? nx : ny) * sizeof *buf);
    if (y) {
        dy = malloc(ny * sizeof *dy);
        load_f32(g, "dy", dy, ny);
    }

    dnal_net_forward(net, &pass);
    if (y) {
        dnal_tensor_read(ctx, y, 0, buf);
        compare(g, cname, "y", "expect/y", buf, ny);
    } else {
        float loss = (float)dnal_softmax_ce_result(net->loss).loss;
        compare(g, cname, "loss", "expect/loss", &loss, 1);
    }
    if (pass.training) {
        h_backward(net, &pass, dy);
        dnal_tensor_read(ctx, net->input, 1, buf);
        compare(g, cname, "dx", "expect/dx", buf, nx);
    }
    for (int i = 0; i < net->n_layers; i++) {
        dnal_layer *l = net->layers[i];
        char what[96];
        for (int k = 0; k < l->n_params && pass.training; k++) {
            snprintf(path, sizeof path, "expect/grad/%s/%s", l->name, l->param[k].name);
            snprintf(what, sizeof what, "d(%s.%s)", l->name, l->param[k].name);
            compare(g, cname, what, path, dnal_net_param_grad(net, l, k), l->param[k].count);
        }
        if (l->kind == DNAL_GATE && pass.training) {
            snprintf(path, sizeof path, "expect/dalpha/%s", l->name);
            snprintf(what, sizeof what, "d(%s.alpha)", l->name);
            compare(g, cname, what, path, net->alpha_grad + l->gate_off, l->n_gates);
        }
        if (l->kind == DNAL_BN) {
            size_t c = l->n_stats / 2;
            snprintf(path, sizeof path, "expect/stats/%s/mean", l->name);
            snprintf(what, sizeof what, "%s running mean", l->name);
            compare(g, cname, what, path, net->stats + l->stats_off, c);
            snprintf(path, sizeof path, "expect/stats/%s/var", l->name);
            snprintf(what, sizeof what, "%s running var", l->name);
            compare(g, cname, what, path, net->stats + l->stats_off + c, c);
        }
    }
    free(x);
    free(dy);
    free(buf);
    free(labels);
    dnal_net_destroy(net);
    H5Gclose(g);
}

int main(void)
{
    const char *path = getenv("FIXTURES");
    dnal_h5_quiet();
    if (!path)
        path = "tests/ref/fixtures.h5";
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (!tap_ok(file >= 0, "open fixtures %s", path))
        return tap_done();
    dnal_ctx *ctx = dnal_ctx_create();
    /* fused as networks run them, then every layer on its own where
     * something fuses; each in the case's layout, then (4-D) in channels
     * last: the layout networks with widths the blocked one serves badly use */
    for (int fuse = 1; fuse >= 0; fuse--)
        for (int i = 0; i < n_layer_cases; i++) {
            const layer_case *lc = &layer_cases[i];
            if (!lc->has_fixture || (!fuse && !lc->fused_gates && !lc->fused_relus))
                continue;
            run_case(ctx, file, lc, NULL, fuse);
            if (lc->ndims == 4)
                run_case(ctx, file, lc, "nhwc", fuse);
        }
    dnal_ctx_destroy(ctx);
    H5Fclose(file);
    return tap_done();
}
