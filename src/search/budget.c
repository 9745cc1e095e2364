/* Budgets (docs/design.md, "Budget targeting"): what a budget counts and
 * the run's budget from its configuration. A budget is a cost function of
 * the network under gate values and a target, a fraction of the dense
 * network's cost. The lambda controller (arch.c) and the fit at prune
 * (prune.c) see only the function, so another cost (a latency model, say)
 * plugs into both by supplying its own. */
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

dnal_budget dnal_budget_of_config(const dnal_config *cfg)
{
    int authors = !strcmp(cfg->search.flops_count, "authors");
    return (dnal_budget){.cost = authors ? dnal_budget_flops_authors() : dnal_budget_flops(),
                         .target = cfg->search.flops_target};
}

double dnal_budget_fraction(const dnal_budget *b, const dnal_net *net, const float *g)
{
    double dense = b->cost.of(b->cost.arg, net, NULL);
    return dense > 0 ? b->cost.of(b->cost.arg, net, g) / dense : 0.0;
}
