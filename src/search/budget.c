/* Budgets (docs/design.md, "Budget targeting"): what a budget counts and
 * the run's budget from its configuration. A budget is a cost function of
 * the network under gate values and a target, a fraction of the dense
 * network's cost. The lambda controller (arch.c) and the fit at prune
 * (prune.c) see only the function, so another cost (a latency model, say)
 * plugs into both by supplying its own: the latency table's predicted time
 * is one (search.latency_target). */
#include <string.h>

#include "dnal/search.h"

static double flops_of(void *arg, const dnal_net *net, const float *g)
{
    (void)arg;
    return dnal_net_cost(net, g).flops;
}

static double flops_authors_of(void *arg, const dnal_net *net, const float *g)
{
    (void)arg;
    return dnal_net_cost_as(net, g, DNAL_COUNT_AUTHORS).flops;
}

dnal_budget_cost dnal_budget_flops(void)
{
    return (dnal_budget_cost){.name = "flops", .of = flops_of, .arg = NULL};
}

dnal_budget_cost dnal_budget_flops_authors(void)
{
    return (dnal_budget_cost){.name = "flops_authors", .of = flops_authors_of, .arg = NULL};
}

static double latency_of(void *arg, const dnal_net *net, const float *g)
{
    const dnal_latency_use *use = arg;
    return dnal_latency_predict(use->tab, net, g, use->which);
}

dnal_budget_cost dnal_budget_latency(const dnal_latency_use *use)
{
    return (dnal_budget_cost){.name = "latency", .of = latency_of, .arg = (void *)use};
}

dnal_budget dnal_budget_of_config(const dnal_config *cfg, const dnal_latency_use *latency)
{
    if (cfg->search.latency_target > 0) /* no budget until the table is known */
        return (dnal_budget){.cost = latency && latency->tab ? dnal_budget_latency(latency)
                                                             : dnal_budget_flops(),
                             .target = latency && latency->tab ? cfg->search.latency_target : 0};
    int authors = !strcmp(cfg->search.flops_count, "authors");
    return (dnal_budget){.cost = authors ? dnal_budget_flops_authors() : dnal_budget_flops(),
                         .target = cfg->search.flops_target};
}

double dnal_budget_fraction(const dnal_budget *b, const dnal_net *net, const float *g)
{
    double dense = b->cost.of(b->cost.arg, net, NULL);
    return dense > 0 ? b->cost.of(b->cost.arg, net, g) / dense : 0.0;
}

void dnal_budget_check_reachable(const dnal_budget *b, dnal_net *net, int64_t multiple,
                                 const char *key)
{
    if (!(b->target > 0))
        return;
    /* the prune rule's smallest network: every gate below a threshold of 2 */
    size_t n = net->n_gates;
    float *saved = dnal_alloc(sizeof *saved * (n + 1));
    memcpy(saved, net->mask, sizeof *saved * n);
    for (size_t c = 0; c < n; c++)
        net->mask[c] = 1.0f;
    dnal_prune(net, 1.0, 2.0, multiple, NULL);
    double floor = dnal_budget_fraction(b, net, net->mask);
    memcpy(net->mask, saved, sizeof *saved * n);
    dnal_free(saved);
    if (floor > b->target)
        dnal_fatal(DNAL_EXIT_USAGE, "%s=%g is out of reach: the smallest network pruning allows "
                   "(one channel per gated layer, in multiples of %lld) costs %.4f of dense in %s; "
                   "ask for more, or a smaller prune.channel_multiple", key, b->target,
                   (long long)(multiple > 0 ? multiple : dnal_net_channel_block(net)), floor,
                   b->cost.name);
}
