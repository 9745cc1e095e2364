/* Compact equivalence: the compact network's logits equal the masked dense
 * network's (pruned gates, inference BN) on the same batch to 1e-4, and the
 * FLOPs and parameters counted from its real layers equal the dense
 * network's cost under the masks (vgg16, resnet20, mobilenetv2); a network
 * built params_only gives the same compact weights and cost without
 * allocating activations; the exact and the authors' FLOPs and parameter
 * counts of a hand-worked residual network. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dnal/models.h"
#include "tap.h"

static uint64_t state = 12345;
static double unif(void)
{
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(state >> 11) / 9007199254740992.0;
}

static float *logits(dnal_net *net, const dnal_pass *p, size_t *n)
{
    dnal_net_forward(net, p);
    dnal_tensor *z = net->loss->in[0];
    *n = dnal_tensor_count(z);
    float *out = malloc(sizeof *out * *n);
    dnal_tensor_read(net->ctx, z, 0, out);
    return out;
}

/* keep_fraction of each gate's channels (at least one), chosen at random;
 * every third gate keeps a single channel */
static void random_masks(dnal_net *net, double keep_fraction)
{
    int gate = 0;
    for (int i = 0; i < net->n_layers; i++) {
        dnal_layer *l = net->layers[i];
        if (l->kind != DNAL_GATE)
            continue;
        float *m = net->mask + l->gate_off;
        int kept = 0;
        for (size_t c = 0; c < l->n_gates; c++) {
            m[c] = (gate % 3 != 2 && unif() < keep_fraction) ? 1.0f : 0.0f;
            kept += m[c] > 0;
        }
        if (gate % 3 == 2 || !kept) {
            for (size_t c = 0; c < l->n_gates; c++)
                m[c] = 0.0f;
            m[(size_t)(unif() * (double)l->n_gates)] = 1.0f;
        }
        gate++;
    }
}

enum { GATE_STEM = 1, CLASSIFIER_BN = 2 };

static void check_with(const dnal_ctx *ctx, const char *model, int64_t size, double keep,
                       double width, int options)
{
    dnal_model_cfg cfg = {.name = model, .batch = 4, .in_channels = 3, .image_size = size,
                          .classes = 10, .width = width, .gate_stem = !!(options & GATE_STEM),
                          .classifier_bn = !!(options & CLASSIFIER_BN)};
    char name[96];
    snprintf(name, sizeof name, "%s%s%s", model, options & GATE_STEM ? " (gated stem)" : "",
             options & CLASSIFIER_BN ? " (classifier BN)" : "");
    dnal_net *dense = dnal_model_build(ctx, &cfg);
    dnal_model_init(dense, 7);
    /* BN away from identity, so a wrong channel shows */
    for (int i = 0; i < dense->n_layers; i++) {
        dnal_layer *l = dense->layers[i];
        if (l->kind != DNAL_BN)
            continue;
        size_t c = l->n_stats / 2;
        for (size_t k = 0; k < c; k++) {
            dnal_net_param(dense, l, 0)[k] = (float)(0.5 + unif());
            dnal_net_param(dense, l, 1)[k] = (float)(unif() - 0.5);
            dense->stats[l->stats_off + k] = (float)(0.2 * (unif() - 0.5));
            dense->stats[l->stats_off + c + k] = (float)(0.5 + unif());
        }
    }
    random_masks(dense, keep);
    float *x = dnal_tensor_data(dense->input);
    for (size_t i = 0; i < dnal_tensor_count(dense->input); i++)
        x[i] = (float)(2 * unif() - 1);
    int32_t labels[4] = {0, 1, 2, 3};
    dnal_net_set_labels(dense, labels);
    dnal_pass pruned = {.training = 0, .gate_mode = DNAL_GATE_PRUNED, .beta = 1};
    size_t n;
    float *zd = logits(dense, &pruned, &n);
    dnal_cost masked = dnal_net_cost(dense, dense->mask), full = dnal_net_cost(dense, NULL);

    dnal_net *compact = dnal_net_compact(dense, 4);
    memcpy(dnal_tensor_data(compact->input), x, sizeof *x * dnal_tensor_count(dense->input));
    dnal_net_set_labels(compact, labels);
    size_t m;
    float *zc = logits(compact, &pruned, &m);
    double diff = 0, scale = 0;
    for (size_t i = 0; i < n && m == n; i++) {
        diff = fmax(diff, fabs(zd[i] - zc[i]));
        scale = fmax(scale, fabs(zd[i]));
    }
    tap_ok(m == n && diff <= 1e-4 * fmax(scale, 1.0),
           "%s: compact logits equal the masked network's (max diff %.2e, |logits| up to %.2f)",
           name, diff, scale);
    dnal_cost real = dnal_net_cost(compact, NULL);
    tap_ok(real.flops == masked.flops && real.params == masked.params,
           "%s: compact cost %.3fM FLOPs %.4fM params = masked cost %.3fM %.4fM (dense %.3fM)", name,
           real.flops / 1e6, real.params / 1e6, masked.flops / 1e6, masked.params / 1e6,
           full.flops / 1e6);
    int gates = 0;
    for (int i = 0; i < compact->n_layers; i++)
        gates += compact->layers[i]->kind == DNAL_GATE;
    tap_ok(gates == 0 && real.flops < full.flops, "%s: the compact network has no gates and fewer FLOPs",
           name);

    /* the same on a network that holds no activations (dnal export, model
     * file checks): the same buffers, costs and compact weights */
    dnal_ctx plan = *ctx;
    plan.params_only = 1;
    dnal_net *pd = dnal_model_build(&plan, &cfg);
    memcpy(pd->param, dense->param, sizeof(float) * dense->n_param);
    memcpy(pd->stats, dense->stats, sizeof(float) * dense->n_stats);
    memcpy(pd->mask, dense->mask, sizeof(float) * dense->n_gates);
    dnal_net *pc = dnal_net_compact(pd, 4);
    dnal_cost pcost = dnal_net_cost(pc, NULL);
    int same = pc->n_param == compact->n_param && pc->n_stats == compact->n_stats &&
               pcost.flops == real.flops && pcost.params == real.params;
    for (int i = 0; same && i < compact->n_layers; i++) {
        const dnal_layer *l = compact->layers[i], *q = dnal_net_find(pc, l->name);
        same = q && q->n_params == l->n_params;
        for (int k = 0; same && k < l->n_params; k++)
            same = !memcmp(dnal_net_param(compact, l, k), dnal_net_param(pc, q, k),
                           sizeof(float) * l->param[k].count);
    }
    tap_ok(same && pd->acts.bytes == 0 && pc->acts.bytes == 0 && pc->params_only,
           "%s: params_only: no activations (%zu, %zu bytes; runnable %zu), the same compact "
           "weights and cost", name, pd->acts.bytes, pc->acts.bytes, compact->acts.bytes);
    dnal_net_destroy(pc);
    dnal_net_destroy(pd);
    free(zd);
    free(zc);
    dnal_net_destroy(compact);
    dnal_net_destroy(dense);
}

static void check(const dnal_ctx *ctx, const char *name, int64_t size, double keep)
{
    check_with(ctx, name, size, keep, 1.0, 0);
}

/* Both FLOPs counts on a hand-worked network (N x 2 x 4 x 4 input; 3x3
 * convs padded, 1x1 convs, no biases but the classifier's):
 *   stem conv 2->4 3x3, BN, ReLU                    (ungated)        x
 *   conv1 4->4 3x3, BN, gate1, ReLU, conv2 4->4 3x3, BN, gate2;
 *   add(branch, x), ReLU                            (residual)       y
 *   conv4 4->6 1x1, BN, gate4; shortcut ds 4->6 1x1, BN (ungated);
 *   add(branch, shortcut), ReLU, average pool, fc 6->3
 * gate1 keeps 2 of 4, gate2 1 of 4, gate4 3 of 6. Per 4x4 map:
 *   exact:   stem 16*4*9*2 = 1152, conv1 16*2*9*4 = 1152, conv2 16*1*9*2 = 288;
 *            y keeps all 4 channels (the shortcut does): conv4 16*3*4 = 192,
 *            ds 16*6*4 = 384, the sum keeps 6: fc 6*3 = 18;     total 3186
 *   authors: y's channels are gate2's (1): conv4 16*3*1 = 48, ds counts its
 *            input whole (384), the sum's are gate4's (3): fc 9; total 3033
 * parameters: weights 72 + 72 + 18 + 12 + 24 + (18 + 3), BN 2 * (4+2+1+3+6)
 *   = 251 exact; the authors' conv4 has 3 weights and fc 9 + 3: 233. */
static void check_conventions(const dnal_ctx *ctx)
{
    dnal_net *net = dnal_net_create(ctx, 2, 2, 4, 4);
    dnal_conv_cfg k3 = {.out_c = 4, .kernel = 3, .stride = 1, .pad = 1, .groups = 1};
    dnal_conv_cfg k1 = {.out_c = 6, .kernel = 1, .stride = 1, .pad = 0, .groups = 1};
    dnal_tensor *x = dnal_net_relu(net, "stem.relu",
                                   dnal_net_bn(net, "stem.bn", dnal_net_conv(net, "stem", net->input, &k3)), 0);
    dnal_tensor *t = dnal_net_gate(net, "gate1", dnal_net_bn(net, "bn1", dnal_net_conv(net, "conv1", x, &k3)));
    t = dnal_net_relu(net, "relu1", t, 0);
    t = dnal_net_gate(net, "gate2", dnal_net_bn(net, "bn2", dnal_net_conv(net, "conv2", t, &k3)));
    dnal_tensor *y = dnal_net_relu(net, "relu2", dnal_net_residual(net, "add1", t, x), 0);
    t = dnal_net_gate(net, "gate4", dnal_net_bn(net, "bn4", dnal_net_conv(net, "conv4", y, &k1)));
    dnal_tensor *sc = dnal_net_bn(net, "ds.bn", dnal_net_conv(net, "ds", y, &k1));
    y = dnal_net_relu(net, "relu4", dnal_net_residual(net, "add2", t, sc), 0);
    dnal_net_softmax_ce(net, "loss", dnal_net_linear(net, "fc", dnal_net_gap(net, "gap", y), 3, 1));
    dnal_net_finalize(net);
    dnal_model_init(net, 3);
    static const float keep[14] = {1, 1, 0, 0, /* gate1 */ 1, 0, 0, 0, /* gate2 */
                                   0, 1, 1, 0, 1, 0 /* gate4 */};
    memcpy(net->mask, keep, sizeof keep);
    dnal_cost exact = dnal_net_cost_as(net, net->mask, DNAL_COUNT_EXACT);
    dnal_cost authors = dnal_net_cost_as(net, net->mask, DNAL_COUNT_AUTHORS);
    dnal_cost dense_e = dnal_net_cost_as(net, NULL, DNAL_COUNT_EXACT);
    dnal_cost dense_a = dnal_net_cost_as(net, NULL, DNAL_COUNT_AUTHORS);
    tap_ok(exact.flops == 3186 && exact.params == 251,
           "exact count of the hand-worked residual net: %.0f FLOPs (3186), %.0f params (251)",
           exact.flops, exact.params);
    tap_ok(authors.flops == 3033 && authors.params == 233,
           "authors' count (pruned branch-end channels leave the next conv's input, projection "
           "shortcuts whole): %.0f FLOPs (3033), %.0f params (233)", authors.flops, authors.params);
    tap_ok(dense_e.flops == dense_a.flops && dense_e.params == dense_a.params,
           "dense, both counts agree: %.0f FLOPs, %.0f params", dense_e.flops, dense_a.params);
    dnal_net *small = dnal_net_compact(net, 2);
    dnal_cost real = dnal_net_cost(small, NULL);
    tap_ok(real.flops == exact.flops && real.params == exact.params,
           "the compact network computes the exact count: %.0f FLOPs, %.0f params", real.flops,
           real.params);
    dnal_net_destroy(small);
    dnal_net_destroy(net);
}

int main(void)
{
    dnal_ctx *ctx = dnal_ctx_create();
    check_conventions(ctx);
    check(ctx, "vgg16", 32, 0.5);
    check(ctx, "resnet20", 32, 0.5);
    check(ctx, "resnet20", 28, 0.8);
    check(ctx, "mobilenetv2", 32, 0.5);
    check(ctx, "resnet18", 64, 0.6);
    check_with(ctx, "resnet18", 64, 0.6, 1.0, GATE_STEM);
    check_with(ctx, "vgg16-imagenet", 32, 0.5, 0.25, CLASSIFIER_BN);
    dnal_ctx_destroy(ctx);
    return tap_done();
}
