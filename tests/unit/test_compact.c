/* Compact equivalence: the compact network's logits equal the masked dense
 * network's (pruned gates, inference BN) on the same batch to 1e-4, and the
 * FLOPs and parameters counted from its real layers equal the dense
 * network's cost under the masks (vgg16, resnet20, mobilenetv2); a network
 * built params_only gives the same compact weights and cost without
 * allocating activations. */
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

static void check(const dnal_ctx *ctx, const char *name, int64_t size, double keep)
{
    dnal_model_cfg cfg = {.name = name, .batch = 4, .in_channels = 3, .image_size = size,
                          .classes = 10, .width = 1.0};
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

int main(void)
{
    dnal_ctx *ctx = dnal_ctx_create();
    check(ctx, "vgg16", 32, 0.5);
    check(ctx, "resnet20", 32, 0.5);
    check(ctx, "resnet20", 28, 0.8);
    check(ctx, "mobilenetv2", 32, 0.5);
    check(ctx, "resnet18", 64, 0.6);
    dnal_ctx_destroy(ctx);
    return tap_done();
}
