/* Every layer's input, parameter and alpha gradients against central finite
 * differences of a scalar loss L = sum(y * r) (or the CE loss), on small
 * shapes, in the layouts the layers meet inside a network (channel-blocked,
 * with padded channels, or channels last) and in plain layouts.
 *
 * Tolerance: max |fd - analytic| over the sampled entries, divided by the
 * largest analytic entry of that tensor, must stay below 1e-2 (float32
 * forward passes, step 1e-2, or 1e-3 where ReLU kinks are near; step/beta
 * for alpha). BN is checked in training mode: backward always follows a
 * training forward (inference BN is checked against PyTorch). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "harness.h"
#include "tap.h"

enum { FILL_UNIFORM, FILL_AWAY_RELU, FILL_AWAY_RELU6, FILL_DISTINCT };
static const double TOL = 1e-2;
static const int SAMPLES = 24;

typedef struct fd_case {
    const char *label;
    const char *name;   /* layer_cases entry */
    const char *layout; /* NULL: the case's own */
    int fill;
    dnal_pass pass;
    int zero_some_masks;
    double step; /* 0: 1e-2; smaller where ReLU kinks lie within reach */
} fd_case;

/* ---------------------------------------------------------------- check */

static void run_case(const dnal_ctx *ctx, const fd_case *fc, uint64_t seed)
{
    uint64_t st = seed;
    const layer_case *lc = case_find(fc->name);
    DNAL_ASSERT(lc != NULL);
    dnal_net *net = case_net(ctx, lc, fc->layout);
    dnal_tensor *y = h_output(net);

    /* parameters: BN scales near 1, everything else small and signed */
    for (int i = 0; i < net->n_layers; i++) {
        dnal_layer *l = net->layers[i];
        for (int k = 0; k < l->n_params; k++) {
            int scale = l->kind == DNAL_BN && k == 0;
            h_fill(dnal_net_param(net, l, k), l->param[k].count, scale ? 0.5 : -0.5,
                   scale ? 1.5 : 0.5, &st);
        }
    }
    double beta = fc->pass.beta > 0 ? fc->pass.beta : 1.0;
    h_fill(net->alpha, net->n_gates, -3.0 / beta, 3.0 / beta, &st);
    if (fc->zero_some_masks)
        for (size_t g = 0; g < net->n_gates; g += 3)
            net->mask[g] = 0.0f;

    size_t nx = dnal_tensor_count(net->input);
    float *x = malloc(nx * sizeof *x), *dx = malloc(nx * sizeof *dx);
    const float kinks[2] = {0.0f, 6.0f};
    switch (fc->fill) {
    case FILL_AWAY_RELU: h_fill_away(x, nx, -1, 1, kinks, 1, 0.05, &st); break;
    case FILL_AWAY_RELU6: h_fill_away(x, nx, -2, 8, kinks, 2, 0.05, &st); break;
    case FILL_DISTINCT: h_fill_distinct(x, nx, 0.05, &st); break;
    default: h_fill(x, nx, -1, 1, &st); break;
    }
    int32_t *labels = NULL;
    if (net->loss) {
        int64_t classes = net->loss->in[0]->c;
        labels = malloc((size_t)lc->n * sizeof *labels);
        for (int64_t i = 0; i < lc->n; i++)
            labels[i] = (int32_t)((i * 7 + 3) % classes);
        dnal_net_set_labels(net, labels);
    }
    size_t ny = y ? dnal_tensor_count(y) : 0;
    float *r = malloc((ny + 1) * sizeof *r);
    h_fill(r, ny, -1, 1, &st);

    h_set_input(net, x);
    h_loss(net, &fc->pass, r);
    h_backward(net, &fc->pass, r);
    dnal_tensor_read(ctx, net->input, 1, dx);

    double step = fc->step > 0 ? fc->step : fc->fill == FILL_DISTINCT ? 1e-3 : 1e-2;
    double e = h_fd_check(net, &fc->pass, r, x, dx, nx, step, SAMPLES, 1, &st);
    tap_ok(e < TOL, "fd %s: d(input) rel err %.2e", fc->label, e);
    for (int i = 0; i < net->n_layers; i++) {
        dnal_layer *l = net->layers[i];
        for (int k = 0; k < l->n_params; k++) {
            size_t cnt = l->param[k].count;
            float *an = malloc(cnt * sizeof *an);
            memcpy(an, dnal_net_param_grad(net, l, k), cnt * sizeof *an);
            e = h_fd_check(net, &fc->pass, r, dnal_net_param(net, l, k), an, cnt, step, SAMPLES,
                           0, &st);
            tap_ok(e < TOL, "fd %s: d(%s.%s) rel err %.2e", fc->label, l->name, l->param[k].name, e);
            free(an);
        }
        if (l->kind == DNAL_GATE) {
            float *an = malloc(l->n_gates * sizeof *an);
            memcpy(an, net->alpha_grad + l->gate_off, l->n_gates * sizeof *an);
            double maxan = 0;
            for (size_t g = 0; g < l->n_gates; g++)
                maxan = fmax(maxan, fabs(an[g]));
            e = h_fd_check(net, &fc->pass, r, net->alpha + l->gate_off, an, l->n_gates,
                           step / beta, SAMPLES, 0, &st);
            if (fc->pass.gate_mode == DNAL_GATE_SEARCH)
                tap_ok(e < TOL && maxan > 0, "fd %s: d(%s.alpha) rel err %.2e (max |dalpha| %.2e)",
                       fc->label, l->name, e, maxan);
            else /* alpha has no effect: both the analytic and fd gradients are exactly 0 */
                tap_ok(e == 0 && maxan == 0, "fd %s: d(%s.alpha) is zero (err %.2e)", fc->label,
                       l->name, e);
            free(an);
        }
    }
    free(x);
    free(dx);
    free(r);
    free(labels);
    dnal_net_destroy(net);
}

/* max |a - b| / max |b| */
static double rel_diff(const float *a, const float *b, size_t n)
{
    double d = 0, m = 1e-30;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return d / m;
}

/* dnal's channels-last BN kernel against oneDNN's in nChw16c: the same
 * output, input gradient and scale and shift gradients, in training and
 * inference (running statistics after one training pass) */
static void check_bn_kernels(const dnal_ctx *ctx)
{
    const layer_case *lc = case_find("bn_odd");
    const char *layouts[2] = {"nhwc", "nChw16c"};
    dnal_net *net[2];
    size_t nx = (size_t)(lc->n * lc->c * lc->h * lc->w), nc = (size_t)lc->c;
    float *x = malloc(nx * sizeof *x), *r = malloc(nx * sizeof *r), *out[2][4];
    uint64_t st = 77;
    h_fill(x, nx, -1, 3, &st);
    h_fill(r, nx, -1, 1, &st);
    const dnal_pass train = {.training = 1, .gate_mode = DNAL_GATE_OFF, .beta = 1};
    const dnal_pass infer = {.training = 0, .gate_mode = DNAL_GATE_OFF, .beta = 1};
    for (int k = 0; k < 2; k++) {
        net[k] = case_net(ctx, lc, layouts[k]);
        dnal_layer *bn = net[k]->layers[0];
        uint64_t pst = 5;
        h_fill(dnal_net_param(net[k], bn, 0), nc, 0.5, 1.5, &pst);
        h_fill(dnal_net_param(net[k], bn, 1), nc, -0.5, 0.5, &pst);
        for (int j = 0; j < 4; j++)
            out[k][j] = malloc(nx * sizeof(float));
        h_set_input(net[k], x);
        dnal_net_forward(net[k], &train);
        dnal_tensor_read(ctx, h_output(net[k]), 0, out[k][0]);
        h_backward(net[k], &train, r);
        dnal_tensor_read(ctx, net[k]->input, 1, out[k][1]);
        memcpy(out[k][2], dnal_net_param_grad(net[k], bn, 0), nc * sizeof(float));
        memcpy(out[k][2] + nc, dnal_net_param_grad(net[k], bn, 1), nc * sizeof(float));
        dnal_net_forward(net[k], &infer);
        dnal_tensor_read(ctx, h_output(net[k]), 0, out[k][3]);
    }
    double e[4] = {rel_diff(out[0][0], out[1][0], nx), rel_diff(out[0][1], out[1][1], nx),
                   rel_diff(out[0][2], out[1][2], 2 * nc), rel_diff(out[0][3], out[1][3], nx)};
    tap_ok(e[0] < 1e-5 && e[1] < 1e-5 && e[2] < 1e-5 && e[3] < 1e-5,
           "bn C=13: dnal's NHWC kernel = oneDNN's nChw16c: y %.1e, dx %.1e, "
           "d(scale, shift) %.1e, inference y %.1e", e[0], e[1], e[2], e[3]);
    for (int k = 0; k < 2; k++) {
        for (int j = 0; j < 4; j++)
            free(out[k][j]);
        dnal_net_destroy(net[k]);
    }
    free(x);
    free(r);
}

int main(void)
{
    dnal_ctx *ctx = dnal_ctx_create();
    const dnal_pass train = {.training = 1, .gate_mode = DNAL_GATE_OFF, .beta = 1};
    const dnal_pass s1 = {.training = 1, .gate_mode = DNAL_GATE_SEARCH, .beta = 1};
    const dnal_pass s10 = {.training = 1, .gate_mode = DNAL_GATE_SEARCH, .beta = 10};
    const dnal_pass s1000 = {.training = 1, .gate_mode = DNAL_GATE_SEARCH, .beta = 1000};
    const dnal_pass pruned = {.training = 1, .gate_mode = DNAL_GATE_PRUNED, .beta = 10};
    const dnal_pass off = {.training = 1, .gate_mode = DNAL_GATE_OFF, .beta = 10};
    const dnal_pass block = {.training = 1, .gate_mode = DNAL_GATE_SEARCH, .beta = 5};
    const fd_case cases[] = {
        {"conv3x3 bias", "conv3x3", NULL, FILL_UNIFORM, train, 0, 0},
        {"conv3x3 bias nChw16c", "conv3x3", "nChw16c", FILL_UNIFORM, train, 0, 0},
        {"conv3x3 s2 nchw", "conv_s2_nchw", NULL, FILL_UNIFORM, train, 0, 0},
        {"conv3x3 bias nhwc", "conv3x3", "nhwc", FILL_UNIFORM, train, 0, 0},
        {"conv1x1 24->40", "conv1x1", NULL, FILL_UNIFORM, train, 0, 0},
        {"conv depthwise", "conv_dw", NULL, FILL_UNIFORM, train, 0, 0},
        {"conv depthwise 7x7 (weight gradient in NHWC)", "conv_dw7", NULL, FILL_UNIFORM, train, 0, 0},
        {"conv groups=2 s2", "conv_group", NULL, FILL_UNIFORM, train, 0, 0},
        {"bn train C=20", "bn_train", NULL, FILL_UNIFORM, train, 0, 0},
        {"bn train C=20 nChw16c", "bn_train", "nChw16c", FILL_UNIFORM, train, 0, 0},
        {"bn train C=13", "bn_odd", NULL, FILL_UNIFORM, train, 0, 0},
        {"bn train C=13 nhwc (dnal's kernel)", "bn_odd", "nhwc", FILL_UNIFORM, train, 0, 0},
        {"relu", "relu", NULL, FILL_AWAY_RELU, train, 0, 0},
        {"relu6", "relu6", NULL, FILL_AWAY_RELU6, train, 0, 0},
        {"maxpool 3/2/1", "maxpool", NULL, FILL_DISTINCT, train, 0, 0},
        {"avgpool 3/1/1", "avgpool", NULL, FILL_UNIFORM, train, 0, 0},
        {"avgpool 2/2/0", "avgpool2", NULL, FILL_UNIFORM, train, 0, 0},
        {"global avgpool", "gap", NULL, FILL_UNIFORM, train, 0, 0},
        {"linear 4-D input", "linear", NULL, FILL_UNIFORM, train, 0, 0},
        {"linear 2-D input", "linear_2d", NULL, FILL_UNIFORM, train, 0, 0},
        {"add (fan-out)", "add", NULL, FILL_AWAY_RELU, train, 0, 0},
        {"gate beta=1", "gate_search", NULL, FILL_UNIFORM, s1, 1, 0},
        {"gate beta=10", "gate_search", NULL, FILL_UNIFORM, s10, 1, 0},
        {"gate beta=10 nChw16c", "gate_search", "nChw16c", FILL_UNIFORM, s10, 1, 0},
        {"gate beta=1000", "gate_search", NULL, FILL_UNIFORM, s1000, 1, 0},
        {"gate beta=10 nchw", "gate_nchw", NULL, FILL_UNIFORM, s10, 0, 0},
        {"gate beta=10 nhwc", "gate_search", "nhwc", FILL_UNIFORM, s10, 1, 0},
        {"gate pruned", "gate_pruned", NULL, FILL_UNIFORM, pruned, 1, 0},
        {"gate off", "gate_off", NULL, FILL_UNIFORM, off, 1, 0},
        {"softmax-ce", "softmax_ce", NULL, FILL_UNIFORM, train, 0, 0},
        {"scatter-add into x", "scatter_add", NULL, FILL_UNIFORM, train, 0, 0},
        {"scatter-add into x nhwc", "scatter_add", "nhwc", FILL_UNIFORM, train, 0, 0},
        {"option-A shortcut", "shortcut_a", NULL, FILL_UNIFORM, train, 0, 0},
        {"classifier head", "head", NULL, FILL_AWAY_RELU, train, 0, 0},
        /* BN with the gate folded in and the ReLU fused (src/net/fuse.c) */
        {"bn-gate-relu beta=1", "bng_relu_b1", NULL, FILL_UNIFORM, s1, 1, 1e-3},
        {"bn-gate-relu beta=10", "bng_relu_b10", NULL, FILL_UNIFORM, s10, 1, 1e-3},
        {"bn-gate-relu beta=1000", "bng_relu_b1000", NULL, FILL_UNIFORM, s1000, 1, 1e-3},
        {"bn-gate-relu beta=10 nChw16c", "bng_relu_b10", "nChw16c", FILL_UNIFORM, s10, 1, 1e-3},
        {"bn-gate-relu beta=10 nhwc", "bng_relu_b10", "nhwc", FILL_UNIFORM, s10, 1, 1e-3},
        {"bn-gate-relu C=13 nhwc (dnal's kernel)", "bng_relu_odd", "nhwc", FILL_UNIFORM, s10, 1, 1e-3},
        {"bn-gate-relu pruned", "bng_relu_pruned", NULL, FILL_UNIFORM, pruned, 1, 1e-3},
        {"bn-gate-relu off", "bng_relu_off", NULL, FILL_UNIFORM, off, 1, 1e-3},
        {"bn-gate-relu6 beta=10", "bng_relu6", NULL, FILL_UNIFORM, s10, 1, 1e-3},
        {"bn-gate beta=10", "bng", NULL, FILL_UNIFORM, s10, 1, 0},
        {"bn-relu", "bn_relu", NULL, FILL_UNIFORM, train, 0, 1e-3},
        {"add-relu", "add_relu", NULL, FILL_AWAY_RELU, train, 0, 0},
        {"basic block beta=5", "basic_block_small", NULL, FILL_UNIFORM, block, 0, 1e-3},
        {"basic block beta=5 nhwc", "basic_block_small", "nhwc", FILL_UNIFORM, block, 0, 1e-3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(ctx, &cases[i], 1000 + i);
    check_bn_kernels(ctx);
    dnal_ctx_destroy(ctx);
    return tap_done();
}
