/* Every layer's input, parameter and alpha gradients against central finite
 * differences of a scalar loss L = sum(y * r) (or the CE loss), on small
 * shapes, in the layouts the layers meet inside a network (channel-blocked,
 * with padded channels) and in plain layouts.
 *
 * Tolerance: max |fd - analytic| over the sampled entries, divided by the
 * largest analytic entry of that tensor, must stay below 1e-2 (float32
 * forward passes, step 1e-2, or 1e-3 where ReLU kinks are near; step/beta
 * for alpha). BN is checked in training mode: backward always follows a
 * training forward (inference BN is checked against PyTorch). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tap.h"

enum { FILL_UNIFORM, FILL_AWAY_RELU, FILL_AWAY_RELU6, FILL_DISTINCT };
static const double TOL = 1e-2;
static const int SAMPLES = 24;

typedef dnal_tensor *(*build_fn)(dnal_net *net, dnal_tensor *x);

typedef struct fd_case {
    const char *label;
    int ndims;
    int64_t n, c, h, w;
    const char *layout;
    build_fn build;
    int fill;
    dnal_pass pass;
    int zero_some_masks;
    double step; /* 0: 1e-2; smaller where ReLU kinks lie within reach */
} fd_case;

/* ------------------------------------------------------------- builders */

static dnal_tensor *b_conv3x3(dnal_net *net, dnal_tensor *x)
{
    dnal_conv_cfg c = {.out_c = 24, .kernel = 3, .stride = 1, .pad = 1, .groups = 1, .bias = 1};
    return dnal_net_conv(net, "conv", x, &c);
}
static dnal_tensor *b_conv_s2(dnal_net *net, dnal_tensor *x)
{
    dnal_conv_cfg c = {.out_c = 16, .kernel = 3, .stride = 2, .pad = 1, .groups = 1};
    return dnal_net_conv(net, "conv", x, &c);
}
static dnal_tensor *b_conv1x1(dnal_net *net, dnal_tensor *x)
{
    dnal_conv_cfg c = {.out_c = 40, .kernel = 1, .stride = 1, .pad = 0, .groups = 1};
    return dnal_net_conv(net, "conv", x, &c);
}
static dnal_tensor *b_conv_dw(dnal_net *net, dnal_tensor *x)
{
    dnal_conv_cfg c = {.out_c = x->c, .kernel = 3, .stride = 1, .pad = 1, .groups = x->c};
    return dnal_net_conv(net, "conv", x, &c);
}
static dnal_tensor *b_conv_group(dnal_net *net, dnal_tensor *x)
{
    dnal_conv_cfg c = {.out_c = 32, .kernel = 3, .stride = 2, .pad = 1, .groups = 2, .bias = 1};
    return dnal_net_conv(net, "conv", x, &c);
}
static dnal_tensor *b_bn(dnal_net *net, dnal_tensor *x) { return dnal_net_bn(net, "bn", x); }
static dnal_tensor *b_relu(dnal_net *net, dnal_tensor *x) { return dnal_net_relu(net, "relu", x, 0); }
static dnal_tensor *b_relu6(dnal_net *net, dnal_tensor *x) { return dnal_net_relu(net, "relu6", x, 6); }
static dnal_tensor *b_maxpool(dnal_net *net, dnal_tensor *x)
{
    return dnal_net_pool(net, "pool", DNAL_MAXPOOL, x, 3, 2, 1);
}
static dnal_tensor *b_avgpool(dnal_net *net, dnal_tensor *x)
{
    return dnal_net_pool(net, "pool", DNAL_AVGPOOL, x, 3, 1, 1);
}
static dnal_tensor *b_gap(dnal_net *net, dnal_tensor *x) { return dnal_net_gap(net, "gap", x); }
static dnal_tensor *b_linear(dnal_net *net, dnal_tensor *x)
{
    return dnal_net_linear(net, "fc", x, 10, 1);
}
/* y = relu(x) + x: the input feeds two layers, so its gradient is a sum */
static dnal_tensor *b_add(dnal_net *net, dnal_tensor *x)
{
    dnal_tensor *r = dnal_net_relu(net, "relu", x, 0);
    return dnal_net_sum(net, "add", r, x);
}
static dnal_tensor *b_gate(dnal_net *net, dnal_tensor *x) { return dnal_net_gate(net, "gate", x); }
static dnal_tensor *b_ce(dnal_net *net, dnal_tensor *x)
{
    dnal_net_softmax_ce(net, "ce", x);
    return NULL;
}
/* conv-BN-gate-ReLU-conv-BN-gate + shortcut, ReLU: a ResNet basic block */
static dnal_tensor *b_block(dnal_net *net, dnal_tensor *x)
{
    dnal_conv_cfg c = {.out_c = x->c, .kernel = 3, .stride = 1, .pad = 1, .groups = 1};
    dnal_tensor *t = dnal_net_conv(net, "conv1", x, &c);
    t = dnal_net_bn(net, "bn1", t);
    t = dnal_net_gate(net, "gate1", t);
    t = dnal_net_relu(net, "relu1", t, 0);
    t = dnal_net_conv(net, "conv2", t, &c);
    t = dnal_net_bn(net, "bn2", t);
    t = dnal_net_gate(net, "gate2", t);
    t = dnal_net_sum(net, "add", t, x);
    return dnal_net_relu(net, "relu2", t, 0);
}

/* ---------------------------------------------------------------- check */

static void run_case(const dnal_ctx *ctx, const fd_case *fc, uint64_t seed)
{
    uint64_t st = seed;
    int64_t dims[4] = {fc->n, fc->c, fc->h, fc->w};
    dnal_md md = fc->ndims == 2 ? dnal_md_plain(2, dims) : h_md(ctx, dims, fc->layout);
    dnal_net *net = dnal_net_create_md(ctx, &md);
    net->input_grad = 1;
    dnal_tensor *y = fc->build(net, net->input);
    dnal_net_finalize(net);

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

    size_t nx = (size_t)(fc->n * fc->c * fc->h * fc->w);
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
        labels = malloc((size_t)fc->n * sizeof *labels);
        for (int64_t i = 0; i < fc->n; i++)
            labels[i] = (int32_t)((i * 7 + 3) % fc->c);
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

int main(void)
{
    dnal_ctx *ctx = dnal_ctx_create();
    const dnal_pass train = {.training = 1, .gate_mode = DNAL_GATE_OFF, .beta = 1};
    const dnal_pass s1 = {.training = 1, .gate_mode = DNAL_GATE_SEARCH, .beta = 1};
    const dnal_pass s10 = {.training = 1, .gate_mode = DNAL_GATE_SEARCH, .beta = 10};
    const dnal_pass s1000 = {.training = 1, .gate_mode = DNAL_GATE_SEARCH, .beta = 1000};
    const dnal_pass pruned = {.training = 1, .gate_mode = DNAL_GATE_PRUNED, .beta = 10};
    const dnal_pass off = {.training = 1, .gate_mode = DNAL_GATE_OFF, .beta = 10};
    const fd_case cases[] = {
        {"conv3x3 bias", 4, 2, 16, 6, 6, "native", b_conv3x3, FILL_UNIFORM, train, 0},
        {"conv3x3 bias nChw16c", 4, 2, 16, 6, 6, "nChw16c", b_conv3x3, FILL_UNIFORM, train, 0},
        {"conv3x3 s2 nchw", 4, 2, 3, 7, 7, "nchw", b_conv_s2, FILL_UNIFORM, train, 0},
        {"conv1x1 24->40", 4, 2, 24, 5, 5, "native", b_conv1x1, FILL_UNIFORM, train, 0},
        {"conv depthwise", 4, 2, 32, 6, 6, "native", b_conv_dw, FILL_UNIFORM, train, 0},
        {"conv groups=2 s2", 4, 2, 16, 7, 7, "native", b_conv_group, FILL_UNIFORM, train, 0},
        {"bn train C=20", 4, 3, 20, 4, 4, "native", b_bn, FILL_UNIFORM, train, 0},
        {"bn train C=20 nChw16c", 4, 3, 20, 4, 4, "nChw16c", b_bn, FILL_UNIFORM, train, 0},
        {"relu", 4, 2, 20, 4, 4, "native", b_relu, FILL_AWAY_RELU, train, 0},
        {"relu6", 4, 2, 16, 4, 4, "native", b_relu6, FILL_AWAY_RELU6, train, 0},
        {"maxpool 3/2/1", 4, 2, 16, 7, 7, "native", b_maxpool, FILL_DISTINCT, train, 0},
        {"avgpool 3/1/1", 4, 2, 16, 5, 5, "native", b_avgpool, FILL_UNIFORM, train, 0},
        {"global avgpool", 4, 2, 20, 4, 4, "native", b_gap, FILL_UNIFORM, train, 0},
        {"linear 4-D input", 4, 3, 32, 2, 2, "native", b_linear, FILL_UNIFORM, train, 0},
        {"linear 2-D input", 2, 4, 12, 1, 1, "nc", b_linear, FILL_UNIFORM, train, 0},
        {"add (fan-out)", 4, 2, 16, 3, 3, "native", b_add, FILL_AWAY_RELU, train, 0},
        {"gate beta=1", 4, 2, 20, 4, 4, "native", b_gate, FILL_UNIFORM, s1, 1},
        {"gate beta=10", 4, 2, 20, 4, 4, "native", b_gate, FILL_UNIFORM, s10, 1},
        {"gate beta=10 nChw16c", 4, 2, 20, 4, 4, "nChw16c", b_gate, FILL_UNIFORM, s10, 1},
        {"gate beta=1000", 4, 2, 20, 4, 4, "native", b_gate, FILL_UNIFORM, s1000, 1},
        {"gate beta=10 nchw", 4, 2, 5, 3, 3, "nchw", b_gate, FILL_UNIFORM, s10, 0},
        {"gate pruned", 4, 2, 20, 4, 4, "native", b_gate, FILL_UNIFORM, pruned, 1},
        {"gate off", 4, 2, 20, 4, 4, "native", b_gate, FILL_UNIFORM, off, 1},
        {"softmax-ce", 2, 8, 10, 1, 1, "nc", b_ce, FILL_UNIFORM, train, 0},
        {"basic block beta=5", 4, 2, 16, 5, 5, "native", b_block, FILL_UNIFORM,
         {.training = 1, .gate_mode = DNAL_GATE_SEARCH, .beta = 5}, 0, 1e-3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(ctx, &cases[i], 1000 + i);
    dnal_ctx_destroy(ctx);
    return tap_done();
}
