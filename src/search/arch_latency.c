/* The architecture's latency (docs/design.md, "Latency"): with
 * search.regularizer=latency, w_c of a gate's channels is the time one of
 * them costs, from the latency table, normalised to mean 1 as the FLOPs
 * weights are. A gate governs the output channels of the conv before it and
 * the input channels of the layers after it, so its time is the network's
 * (src/net/latency.c) with that gate alone varied: from one block to dense,
 * the slope (T(dense) - T(one block)) / (C - block). A gate of one block
 * saves nothing by closing channels in a layout that computes whole blocks:
 * weight 0. With search.latency_target the run's budget (budget.c) is the
 * table's time, so the lambda controller and the fit at prune work on it
 * as on FLOPs. */
#include <math.h>
#include <string.h>

#include "dnal/search.h"

static void latency_weights(dnal_arch *a, dnal_net *net)
{
    const dnal_latency *tab = a->latency.tab;
    int which = a->latency.which;
    double total = 0;
    for (int i = 0; i < net->n_layers; i++) {
        const dnal_layer *l = net->layers[i];
        if (l->kind != DNAL_GATE)
            continue;
        int64_t c = (int64_t)l->n_gates, one = tab->block < c ? tab->block : c;
        double per = 0;
        if (c > one) {
            double t1 = dnal_latency_gate_time(tab, net, i, (double)one, which, a->g);
            double tc = dnal_latency_gate_time(tab, net, i, (double)c, which, a->g);
            per = fmax(0.0, (tc - t1) / (double)(c - one));
        }
        for (size_t k = 0; k < l->n_gates; k++)
            a->weight[l->gate_off + k] = (float)per;
        total += per * (double)l->n_gates;
    }
    double mean = net->n_gates ? total / (double)net->n_gates : 0;
    for (size_t k = 0; k < net->n_gates; k++)
        a->weight[k] = mean > 0 ? (float)(a->weight[k] / mean) : 1.0f;
}

void dnal_arch_set_latency(dnal_arch *a, dnal_net *net, const dnal_config *cfg,
                           const dnal_latency *tab)
{
    a->latency.tab = tab;
    a->latency.which = strcmp(cfg->search.latency_of, "infer") ? DNAL_LATENCY_TRAIN
                                                                : DNAL_LATENCY_INFER;
    a->latency_dense = dnal_latency_predict(tab, net, NULL, a->latency.which);
    if (!strcmp(cfg->search.regularizer, "latency"))
        latency_weights(a, net);
    if (cfg->search.latency_target > 0) { /* the budget is time (budget.c) */
        a->budget = dnal_budget_of_config(cfg, &a->latency);
        a->budget_dense = a->budget.cost.of(a->budget.cost.arg, net, NULL);
        dnal_budget_check_reachable(&a->budget, net, cfg->prune.channel_multiple,
                                    "search.latency_target");
    }
}

double dnal_arch_expected_latency(dnal_arch *a, dnal_net *net)
{
    if (!a->latency.tab)
        return NAN;
    dnal_pass p = {.training = 1, .gate_mode = DNAL_GATE_SEARCH, .beta = (float)a->beta};
    dnal_net_gate_values(net, &p, a->g);
    return dnal_latency_predict(a->latency.tab, net, a->g, a->latency.which) / a->latency_dense;
}
