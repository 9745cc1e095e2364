/* The method's pieces: the beta continuation (epoch and step schedules), the
 * alpha gradient of CE + regulariser against central finite differences
 * (count and FLOPs-weighted regularisers), and the pruning rules (threshold,
 * earlier masks, the last channel, channel multiples). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dnal/io.h"
#include "dnal/models.h"
#include "dnal/search.h"
#include "tap.h"

static void check_beta(void)
{
    dnal_config cfg;
    dnal_config_defaults(&cfg);
    /* reference recipe: 10 epochs, x10^0.4 at the start of each */
    dnal_config_set(&cfg, "search.beta_update=epoch");
    dnal_config_set(&cfg, "search.epochs=10");
    int ok = 1;
    for (int64_t e = 0; e < 10; e++)
        for (int64_t s = e * 50; s < (e + 1) * 50; s++)
            ok &= fabs(dnal_beta_at(&cfg, s, 500, 50) / pow(10, 0.4 * (double)(e + 1)) - 1) < 1e-12;
    tap_ok(ok, "epoch schedule: beta = 10^(0.4 k) through epoch k = 1..10 (last %.0f)",
           dnal_beta_at(&cfg, 499, 500, 50));
    tap_ok(!dnal_beta_held(&cfg, 499, 500), "epoch schedule: no hold phase");

    /* per step, 200 steps, hold 0.1: 1e4 reached at step 180 and held */
    dnal_config_set(&cfg, "search.beta_update=step");
    dnal_config_set(&cfg, "search.beta_hold=0.1");
    ok = 1;
    for (int64_t s = 0; s < 200; s++) {
        double want = s >= 180 ? 1e4 : pow(1e4, (double)s / 180.0);
        ok &= fabs(dnal_beta_at(&cfg, s, 200, 100) / want - 1) < 1e-12;
        ok &= dnal_beta_held(&cfg, s, 200) == (s >= 180);
    }
    tap_ok(ok, "step schedule: beta = 1e4^(k/180) for k < 180, then held at 1e4 (hold 0.1 of 200)");
    dnal_config_set(&cfg, "search.beta0=2");
    dnal_config_set(&cfg, "search.beta_final=200");
    tap_ok(fabs(dnal_beta_at(&cfg, 90, 200, 100) - 20) < 1e-9 && dnal_beta_at(&cfg, 0, 200, 100) == 2,
           "step schedule: geometric between beta0=2 and beta_final=200 (20 at mid-ramp)");
}

/* conv-BN-gate twice, global pooling, linear, CE, on 4x3x6x6 inputs (no
 * ReLU: perturbing a gate rescales a channel that feeds the next conv, whose
 * outputs would cross ReLU kinks and spoil the finite differences) */
static dnal_net *small_net(const dnal_ctx *ctx)
{
    dnal_net *net = dnal_net_create(ctx, 4, 3, 6, 6);
    dnal_conv_cfg c1 = {.out_c = 12, .kernel = 3, .stride = 1, .pad = 1, .groups = 1};
    dnal_conv_cfg c2 = {.out_c = 20, .kernel = 3, .stride = 2, .pad = 1, .groups = 1};
    dnal_tensor *t = dnal_net_conv(net, "conv1", net->input, &c1);
    t = dnal_net_gate(net, "gate1", dnal_net_bn(net, "bn1", t));
    t = dnal_net_conv(net, "conv2", t, &c2);
    t = dnal_net_gate(net, "gate2", dnal_net_bn(net, "bn2", t));
    t = dnal_net_linear(net, "fc", dnal_net_gap(net, "gap", t), 5, 1);
    dnal_net_softmax_ce(net, "loss", t);
    dnal_net_finalize(net);
    return net;
}

static int held; /* the regulariser on the gates (beta held) */

static double total_loss(dnal_net *net, const dnal_arch *a, const dnal_pass *p)
{
    dnal_net_forward(net, p);
    return dnal_softmax_ce_result(net->loss).loss + dnal_arch_regularize(a, net, held, 0);
}

static void check_alpha_gradient(const dnal_ctx *ctx, const char *regularizer)
{
    dnal_net *net = small_net(ctx);
    dnal_model_init(net, 3);
    unsigned seed = 11;
    float *x = dnal_tensor_data(net->input);
    for (size_t i = 0; i < dnal_tensor_count(net->input); i++)
        x[i] = (float)(rand_r(&seed) % 2001) / 1000.0f - 1.0f;
    int32_t labels[4] = {0, 3, 1, 4};
    dnal_net_set_labels(net, labels);
    dnal_config cfg;
    dnal_config_defaults(&cfg);
    char set[64];
    snprintf(set, sizeof set, "search.regularizer=%s", regularizer);
    dnal_config_set(&cfg, set);
    dnal_config_set(&cfg, "search.lambda=0.3");
    dnal_arch a;
    dnal_arch_init(&a, net, &cfg);
    double beta = 20;
    for (size_t c = 0; c < net->n_gates; c++)
        net->alpha[c] = (float)((rand_r(&seed) % 2001) / 1000.0 - 1.0) * 0.1f;
    net->mask[3] = 0.0f; /* a masked channel: no gradient at all */
    dnal_pass p = {.training = 1, .gate_mode = DNAL_GATE_SEARCH, .beta = (float)beta};
    total_loss(net, &a, &p);
    dnal_net_backward(net, &p, NULL, NULL);
    a.beta = beta;
    dnal_arch_regularize(&a, net, held, 1);
    double worst = 0, maxg = 0;
    for (size_t c = 0; c < net->n_gates; c++)
        maxg = fmax(maxg, fabs(net->alpha_grad[c]));
    for (size_t c = 0; c < net->n_gates; c++) {
        const double h = 1e-3;
        float keep = net->alpha[c];
        net->alpha[c] = (float)(keep + h);
        double lp = total_loss(net, &a, &p), hp = (double)net->alpha[c] - keep;
        net->alpha[c] = (float)(keep - h);
        double lm = total_loss(net, &a, &p), hm = keep - (double)net->alpha[c];
        net->alpha[c] = keep;
        worst = fmax(worst, fabs((lp - lm) / (hp + hm) - net->alpha_grad[c]) / maxg);
    }
    tap_ok(worst < 1e-2 && net->alpha_grad[3] == 0.0f,
           "d(CE + lambda*reg)/d(alpha), %s regulariser%s, beta 20: all %zu channels vs central "
           "differences, max err %.1e of the largest; masked channel 0",
           regularizer, held ? " on the gates (hold)" : "", net->n_gates, worst);
    if (!strcmp(regularizer, "flops")) {
        /* gate1 (12 ch) feeds conv2 at stride 2 and is fed by conv1; gate2 (20) feeds fc */
        double w1 = a.weight[0], w2 = a.weight[12], mean = 0;
        for (size_t c = 0; c < net->n_gates; c++)
            mean += a.weight[c] / (double)net->n_gates;
        double f1 = 36.0 * 3 * 9 + 9.0 * 20 * 9, f2 = 9.0 * 12 * 9 + 5;
        double m1 = f1 / ((12 * f1 + 20 * f2) / 32.0);
        tap_ok(fabs(mean - 1) < 1e-6 && fabs(w1 - m1) < 1e-5 && w1 > w2,
               "FLOPs weights: mean 1, a gate1 channel costs %.3f (= %.3f by hand), gate2 %.3f", w1,
               m1, w2);
    }
    dnal_arch_free(&a);
    dnal_net_destroy(net);
}

static void check_prune(const dnal_ctx *ctx)
{
    dnal_net *net = small_net(ctx);
    /* gate1: alphas from -6 to +5 (x1e-3); gate2: all closed */
    for (size_t c = 0; c < 12; c++)
        net->alpha[c] = (float)((double)c - 6) * 1e-3f;
    for (size_t c = 12; c < 32; c++)
        net->alpha[c] = -1e-3f * (float)(c - 11);
    net->mask[11] = 0.0f; /* an earlier decision stays */
    dnal_prune(net, 1e4, 0.9, 1, NULL);
    const dnal_layer *g1 = dnal_net_find(net, "gate1"), *g2 = dnal_net_find(net, "gate2");
    int ok = 1;
    for (size_t c = 0; c < 12; c++) /* sigmoid(1e4*(c-6)e-3) > 0.9 for c >= 7, but 11 was masked */
        ok &= net->mask[c] == (c >= 7 && c != 11 ? 1.0f : 0.0f);
    tap_ok(ok && dnal_kept_channels(net, g1) == 4,
           "prune: m = m AND sigmoid(beta*alpha) > 0.9, earlier masks kept (4 of gate1)");
    tap_ok(dnal_kept_channels(net, g2) == 1 && net->mask[12] == 1.0f,
           "prune: a layer whose gates all closed keeps its largest alpha");
    for (size_t c = 0; c < 32; c++)
        net->mask[c] = 1.0f;
    dnal_prune(net, 1e4, 0.9, 8, NULL);
    int64_t k1 = dnal_kept_channels(net, g1), k2 = dnal_kept_channels(net, g2);
    tap_ok(k1 == 8 && k2 == 8 && net->mask[4] == 1.0f && net->mask[3] == 0.0f,
           "prune.channel_multiple=8: 5 kept -> 8 (the next largest alphas), 0 -> 8 (kept %lld, %lld)",
           (long long)k1, (long long)k2);
    dnal_net_destroy(net);
}

/* search.flops_target: the masks end at the largest network not above the
 * target, kept channels ranked by alpha */
static void check_budget(const dnal_ctx *ctx)
{
    dnal_model_cfg mc = {.name = "resnet20", .batch = 2, .in_channels = 1, .image_size = 28,
                         .classes = 10, .width = 1.0};
    dnal_net *net = dnal_model_build(ctx, &mc);
    const double dense = dnal_net_cost(net, NULL).flops;
    static const double targets[3] = {0.5, 0.3, 0.9};
    for (int t = 0; t < 3; t++) {
        for (size_t c = 0; c < net->n_gates; c++) { /* a spread of alphas, a third closed */
            net->alpha[c] = (float)((double)((c * 2654435761u) % 1000) / 1000.0 - 0.33) * 1e-3f;
            net->mask[c] = 1.0f;
        }
        dnal_prune(net, 1e4, 0.9, 1, NULL);
        double free_f = dnal_net_cost(net, net->mask).flops / dense;
        for (size_t c = 0; c < net->n_gates; c++)
            net->mask[c] = 1.0f;
        dnal_budget b = {dnal_budget_flops(), targets[t]};
        dnal_prune(net, 1e4, 0.9, 1, &b);
        double f = dnal_net_cost(net, net->mask).flops / dense;
        /* ranked: no closed channel has a larger alpha than an open one (but
         * the one a layer keeps when all its others closed) */
        float min_open = INFINITY, max_closed = -INFINITY;
        for (int i = 0; i < net->n_layers; i++) {
            const dnal_layer *l = net->layers[i];
            if (l->kind != DNAL_GATE || dnal_kept_channels(net, l) < 2)
                continue;
            for (size_t c = 0; c < l->n_gates; c++) {
                float a = net->alpha[l->gate_off + c];
                if (net->mask[l->gate_off + c] != 0.0f)
                    min_open = fminf(min_open, a);
                else
                    max_closed = fmaxf(max_closed, a);
            }
        }
        tap_ok(f <= targets[t] && f > targets[t] - 0.01 && min_open >= max_closed,
               "flops_target=%.1f: the threshold alone gives %.3f, the budget %.4f; kept channels "
               "ranked by alpha", targets[t], free_f, f);
    }
    for (size_t c = 0; c < net->n_gates; c++)
        net->mask[c] = 1.0f;
    dnal_budget half = {dnal_budget_flops(), 0.5};
    dnal_prune(net, 1e4, 0.9, 8, &half);
    double f = dnal_net_cost(net, net->mask).flops / dense;
    int multiples = 1;
    for (int i = 0; i < net->n_layers; i++)
        if (net->layers[i]->kind == DNAL_GATE)
            multiples &= dnal_kept_channels(net, net->layers[i]) % 8 == 0;
    tap_ok(f <= 0.5 && f > 0.45 && multiples,
           "flops_target=0.5 with channel_multiple=8: %.4f, every layer a multiple of 8", f);
    dnal_net_destroy(net);
}

/* A budget counts whatever its cost function says: here the open channels
 * of one gated layer (a stand-in for a latency model that only that layer
 * matters to). The fit lands on it and the lambda controller follows it. */
typedef struct layer_cost {
    const dnal_layer *gate;
    int calls;
} layer_cost;

static double open_in_layer(void *arg, const dnal_net *net, const float *g)
{
    layer_cost *lc = arg;
    lc->calls++;
    double open = 0;
    for (size_t c = 0; c < lc->gate->n_gates; c++)
        open += g ? g[lc->gate->gate_off + c] : 1.0;
    return open;
}

static void check_budget_plug(const dnal_ctx *ctx)
{
    dnal_model_cfg mc = {.name = "resnet20", .batch = 2, .in_channels = 1, .image_size = 28,
                         .classes = 10, .width = 1.0};
    dnal_net *net = dnal_model_build(ctx, &mc);
    const dnal_layer *g = dnal_net_find(net, "layer3.0.gate1"); /* 64 channels */
    layer_cost lc = {g, 0};
    dnal_budget b = {{"layer3.0.gate1", open_in_layer, &lc}, 0.25};
    for (size_t c = 0; c < net->n_gates; c++) {
        net->alpha[c] = (float)((double)((c * 2654435761u) % 1000) / 1000.0 - 0.2) * 1e-3f;
        net->mask[c] = 1.0f;
    }
    double flops_free = 0;
    dnal_prune(net, 1e4, 0.9, 1, NULL);
    flops_free = dnal_net_cost(net, net->mask).flops;
    for (size_t c = 0; c < net->n_gates; c++)
        net->mask[c] = 1.0f;
    dnal_prune(net, 1e4, 0.9, 1, &b);
    int64_t kept = dnal_kept_channels(net, g);
    /* only that layer's channels move the cost: the fit closes them and
     * leaves the others as the threshold set them */
    double flops_fit = dnal_net_cost(net, net->mask).flops;
    tap_ok(kept == 16 && lc.calls > 2 && flops_fit < flops_free,
           "a plugged-in cost (open channels of %s): the fit keeps %lld of 64 for a 0.25 target "
           "(along the global alpha ranking: other layers' smallest alphas close on the way)",
           g->name, (long long)kept);

    /* the controller reads the same cost: above the target lambda grows,
     * below it falls */
    dnal_config cfg;
    dnal_config_defaults(&cfg);
    dnal_arch a;
    dnal_arch_init(&a, net, &cfg);
    a.budget = b;
    a.budget_dense = 64;
    a.beta = 1;
    for (size_t c = 0; c < net->n_gates; c++) {
        net->alpha[c] = 0.0f;
        net->mask[c] = 1.0f;
        net->alpha_grad[c] = 0.0f;
    }
    double l0 = a.lambda;
    lc.calls = 0;
    dnal_arch_step(&a, net, &cfg, 0); /* gates at 0.5: 32 of 64 open, above 0.25 */
    double up = a.lambda;
    a.budget.target = 0.75;
    for (size_t c = 0; c < net->n_gates; c++)
        net->alpha_grad[c] = 0.0f;
    dnal_arch_step(&a, net, &cfg, 0); /* below 0.75 */
    tap_ok(up > l0 && a.lambda < up && lc.calls == 2,
           "the lambda controller follows the plugged-in cost: %.5f -> %.5f (above the target) -> "
           "%.5f (below)", l0, up, a.lambda);
    dnal_arch_free(&a);
    dnal_net_destroy(net);
}

/* the non-finite check blames only a layer the step updates */
static void check_nonfinite_blame(dnal_ctx *ctx)
{
    dnal_model_cfg m = {.name = "convnet", .batch = 2, .in_channels = 1, .image_size = 28,
                        .classes = 10, .width = 1};
    dnal_net *net = dnal_model_build(ctx, &m);
    memset(net->grad, 0, sizeof(float) * net->n_param);
    tap_ok(dnal_nonfinite_gradient(net) == NULL, "nonfinite: finite gradients: none blamed");
    dnal_layer *first = NULL, *last = NULL;
    for (int i = 0; i < net->n_layers; i++)
        if (net->layers[i]->n_params > 0) {
            first = first ? first : net->layers[i];
            last = net->layers[i];
        }
    first->frozen = 1;
    net->grad[first->param[0].off] = NAN;
    tap_ok(dnal_nonfinite_gradient(net) == NULL,
           "nonfinite: NaN only in a frozen layer's gradient (%s): no failure, nobody blamed",
           first->name);
    net->grad[last->param[0].off + 1] = INFINITY;
    const dnal_layer *bad = dnal_nonfinite_gradient(net);
    tap_ok(bad == last, "nonfinite: Inf in %s's gradient blames %s", last->name,
           bad ? bad->name : "nobody");
    first->frozen = 0;
    dnal_net_destroy(net);
}

int main(void)
{
    dnal_ctx *ctx = dnal_ctx_create();
    check_nonfinite_blame(ctx);
    check_beta();
    check_alpha_gradient(ctx, "count");
    check_alpha_gradient(ctx, "flops");
    held = 1;
    check_alpha_gradient(ctx, "count");
    held = 0;
    check_prune(ctx);
    check_budget(ctx);
    check_budget_plug(ctx);
    dnal_ctx_destroy(ctx);
    return tap_done();
}
