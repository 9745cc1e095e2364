/* The method (docs/design.md, "The method"): the beta continuation, the regulariser,
 * the architecture update and budget targeting.
 *
 *   beta_k = beta0 * (beta_final / beta0)^(k / K)
 *   per epoch: k = the search epoch (1-based: the first epoch runs at
 *              beta0 * ratio^(1/K), the last at beta_final), K = search epochs
 *   per step:  k = step, K = the steps before the hold; beta_final is reached
 *              with search.beta_hold of the steps left and held there.
 *
 *   L = CE + lambda * sum_c w_c sigmoid(alpha_c)   (unmasked channels)
 *   dL/dalpha_c += lambda * w_c * s0 (1 - s0),  s0 = sigmoid(alpha_c)
 *
 * While a per-step schedule holds beta, the regulariser penalises the gate
 * itself, lambda * sum_c w_c sigmoid(beta alpha_c). The reference form pushes
 * every open gate down at a constant rate (it sees sigmoid(alpha), not
 * beta), which the loss gradient of a marginally useful channel, scaled by
 * beta s (1 - s), balances inside the band around alpha = 0: such a gate
 * would hover between 0 and 1. On the gate, both gradients scale with
 * beta s (1 - s) and the band has no equilibrium: a gate leaves it open if
 * its loss benefit exceeds lambda w_c, closed otherwise. Alpha's momentum
 * restarts when the hold begins: built under the reference form's steady
 * push, it would carry gates into the band for tens of steps.
 *
 * w_c = 1 (regularizer = count) or the FLOPs one channel of c's layer costs
 * in the dense network, normalised to mean 1 (regularizer = flops). Alpha
 * follows SGD with momentum, no weight decay.
 *
 * Budget targeting (search.flops_target, or any dnal_budget: budget.c):
 * after every update
 *   lambda *= exp(RATE * u * (C/C_dense - target) / target)
 * with C the budget's cost (FLOPs) expected under the gates alpha is heading
 * to (alpha's momentum played out: the gates lag lambda by that
 * displacement) and u the fraction of gates still undecided (|beta alpha| <
 * 7, i.e. 1e-3 < g < 1 - 1e-3). Once gates are 0 or 1 only a slow drift
 * would respond, and a lambda still growing then would close every marginal
 * gate later, so the adaptation fades as the gates decide, and stops while
 * beta is held. Known limit: while the gates sit near 0.5 the expected cost
 * reads low whatever lambda is (about 0.3 of the FLOPs), so lambda falls
 * early and a short search ends far from the target (the default run with
 * target 0.5 at 0.73); prune.c then fits the masks to the target, which
 * lands the compact network (docs/design.md, "Decisions and measurements"). */
#include <math.h>
#include <string.h>

#include "dnal/search.h"

static const double LAMBDA_RATE = 0.2; /* per update, at 100% relative error */
static const double LAMBDA_MIN = 1e-7, LAMBDA_MAX = 10.0;

static double hold_start(const dnal_config *cfg, int64_t total_steps)
{
    return fmax(1.0, floor((double)total_steps * (1.0 - cfg->search.beta_hold)));
}

int dnal_beta_held(const dnal_config *cfg, int64_t step, int64_t total_steps)
{
    return strcmp(cfg->search.beta_update, "epoch") && (double)step >= hold_start(cfg, total_steps);
}

double dnal_beta_at(const dnal_config *cfg, int64_t step, int64_t total_steps,
                    int64_t steps_per_epoch)
{
    double b0 = cfg->search.beta0, ratio = cfg->search.beta_final / b0, t;
    if (!strcmp(cfg->search.beta_update, "epoch")) {
        double epochs = fmax(1.0, ceil(cfg->search.epochs - 1e-9));
        t = (double)(step / steps_per_epoch + 1) / epochs;
    } else {
        t = (double)step / hold_start(cfg, total_steps);
    }
    return b0 * pow(ratio, fmin(t, 1.0));
}

/* dense FLOPs of one channel of every gate: (F_dense - F without that gate) / C */
static void flops_weights(dnal_arch *a, dnal_net *net)
{
    double total = 0;
    for (size_t c = 0; c < net->n_gates; c++)
        a->g[c] = 1.0f;
    for (int i = 0; i < net->n_layers; i++) {
        const dnal_layer *l = net->layers[i];
        if (l->kind != DNAL_GATE)
            continue;
        for (size_t c = 0; c < l->n_gates; c++)
            a->g[l->gate_off + c] = 0.0f;
        double per = (a->flops_dense - dnal_net_cost(net, a->g).flops) / (double)l->n_gates;
        for (size_t c = 0; c < l->n_gates; c++) {
            a->g[l->gate_off + c] = 1.0f;
            a->weight[l->gate_off + c] = (float)per;
        }
        total += per * (double)l->n_gates;
    }
    double mean = total / (double)net->n_gates;
    for (size_t c = 0; c < net->n_gates; c++)
        a->weight[c] = mean > 0 ? (float)(a->weight[c] / mean) : 1.0f;
}

void dnal_arch_init(dnal_arch *a, dnal_net *net, const dnal_config *cfg)
{
    memset(a, 0, sizeof *a);
    dnal_sgd_init(&a->opt, net->n_gates, cfg->search.arch_momentum, 0);
    a->lambda = cfg->search.lambda;
    a->beta = cfg->search.beta0;
    a->weight = dnal_alloc(sizeof(float) * (net->n_gates + 1));
    a->g = dnal_alloc(sizeof(float) * (net->n_gates + 1));
    a->flops_dense = dnal_net_cost(net, NULL).flops;
    a->budget = dnal_budget_of_config(cfg, NULL); /* time: dnal_arch_set_latency */
    a->budget_dense = a->budget.cost.of(a->budget.cost.arg, net, NULL);
    dnal_budget_check_reachable(&a->budget, net, cfg->prune.channel_multiple, "search.flops_target");
    if (!strcmp(cfg->search.regularizer, "flops"))
        flops_weights(a, net);
    else
        for (size_t c = 0; c < net->n_gates; c++)
            a->weight[c] = 1.0f;
}

void dnal_arch_free(dnal_arch *a)
{
    dnal_sgd_free(&a->opt);
    dnal_free(a->weight);
    dnal_free(a->g);
}

double dnal_arch_regularize(const dnal_arch *a, dnal_net *net, int on_gates, int add_gradient)
{
    double reg = 0, scale = on_gates ? a->beta : 1.0;
    for (size_t c = 0; c < net->n_gates; c++) {
        if (net->mask[c] == 0.0f)
            continue;
        double s = dnal_gate_sigmoid(scale, net->alpha[c]);
        reg += a->weight[c] * s;
        if (add_gradient)
            net->alpha_grad[c] += (float)(a->lambda * a->weight[c] * scale * s * (1.0 - s));
    }
    return a->lambda * reg;
}

double dnal_arch_expected_flops(dnal_arch *a, dnal_net *net)
{
    dnal_pass p = {.training = 1, .gate_mode = DNAL_GATE_SEARCH, .beta = (float)a->beta};
    dnal_net_gate_values(net, &p, a->g);
    return dnal_net_cost(net, a->g).flops / a->flops_dense;
}

/* The budget's cost (fraction of dense) of the gates alpha is heading to:
 * alpha once its momentum has played out, alpha - lr v m/(1-m) (the gates
 * lag lambda by that displacement), at the current beta. */
static double heading_cost(dnal_arch *a, dnal_net *net, const dnal_config *cfg)
{
    double m = a->opt.momentum, carry = cfg->search.arch_lr * m / (1.0 - m);
    for (size_t c = 0; c < net->n_gates; c++) {
        float ahead = net->alpha[c] - (float)(carry * a->opt.velocity[c]);
        a->g[c] = dnal_gate_value(DNAL_GATE_SEARCH, (float)a->beta, ahead, net->mask[c]);
    }
    return a->budget.cost.of(a->budget.cost.arg, net, a->g) / a->budget_dense;
}

double dnal_arch_step(dnal_arch *a, dnal_net *net, const dnal_config *cfg, int held)
{
    if (held && !a->held)
        memset(a->opt.velocity, 0, sizeof(float) * net->n_gates);
    a->held = held;
    double reg = dnal_arch_regularize(a, net, held, 1);
    dnal_sgd_update(&a->opt, cfg->search.arch_lr, 0.0, net->alpha, net->alpha_grad, 0, net->n_gates);
    double target = a->budget.target;
    if (target > 0 && !held && a->budget_dense > 0) {
        double err = (heading_cost(a, net, cfg) - target) / target;
        double rate = LAMBDA_RATE * dnal_arch_undecided(a, net);
        a->lambda = fmin(LAMBDA_MAX, fmax(LAMBDA_MIN, a->lambda * exp(rate * err)));
    }
    return reg;
}

double dnal_arch_undecided(const dnal_arch *a, const dnal_net *net)
{
    size_t open = 0, band = 0;
    for (size_t c = 0; c < net->n_gates; c++) {
        if (net->mask[c] == 0.0f)
            continue;
        open++;
        band += fabs(a->beta * net->alpha[c]) < 7.0;
    }
    return open ? (double)band / (double)open : 0.0;
}

double dnal_arch_binary_gap(const dnal_arch *a, const dnal_net *net)
{
    double gap = 0;
    for (size_t c = 0; c < net->n_gates; c++) {
        if (net->mask[c] == 0.0f)
            continue;
        double g = dnal_gate_sigmoid(a->beta, net->alpha[c]);
        gap = fmax(gap, fmin(g, 1.0 - g));
    }
    return gap;
}

double dnal_arch_open_fraction(const dnal_arch *a, const dnal_net *net)
{
    int64_t open = 0;
    for (size_t c = 0; c < net->n_gates; c++)
        open += dnal_gate_sigmoid(a->beta, net->alpha[c]) * net->mask[c] > 0.5;
    return net->n_gates ? (double)open / (double)net->n_gates : 0.0;
}
