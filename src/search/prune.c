/* Pruning (docs/design.md, "The method"): m_c = m_c AND [sigmoid(beta*alpha_c)
 * > threshold]; a gated layer never loses its last channel (the largest alpha
 * stays); with prune.channel_multiple M a layer keeps a multiple of M
 * channels (rounded up with the next largest alphas), because oneDNN's
 * blocked layouts make odd widths slow; M = 0 (auto) is the channel block
 * of the network's layout (16 with AVX-512, 8 with AVX2).
 *
 * Removable branches (supernet candidates, layer->branch): a branch whose
 * last gate (the one nearest its output: the projection's) closes every
 * channel is removed, all its gates masked off; its output was exactly zero
 * in pruned mode, so the compact network simply leaves it out. A set of
 * branches (layer->branch_set: an edge without shortcut) keeps at least one:
 * if all would go, the one whose last gate has the largest alpha stays. A
 * branch that stays follows the usual rule in each of its gates.
 *
 * With a budget (search.flops_target) the masks are then moved to it along
 * the alpha ranking (fit_budget), whatever the budget counts. */
#define _GNU_SOURCE /* qsort_r */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dnal/search.h"

/* the channel of [first, first+n) with the largest alpha among masked-off ones */
static int64_t best_closed(const dnal_net *net, size_t first, size_t n)
{
    int64_t best = -1;
    for (size_t c = 0; c < n; c++)
        if (net->mask[first + c] == 0.0f &&
            (best < 0 || net->alpha[first + c] > net->alpha[first + (size_t)best]))
            best = (int64_t)c;
    return best;
}

static int64_t open_channels(const dnal_net *net, const dnal_layer *l)
{
    int64_t kept = 0;
    for (size_t c = 0; c < l->n_gates; c++)
        kept += net->mask[l->gate_off + c] != 0.0f;
    return kept;
}

static float max_alpha(const dnal_net *net, const dnal_layer *l)
{
    float m = -INFINITY;
    for (size_t c = 0; c < l->n_gates; c++)
        m = fmaxf(m, net->alpha[l->gate_off + c]);
    return m;
}

/* per branch id: its last gate layer (index) and whether it goes */
typedef struct branches {
    int n;          /* ids 1..n-1 */
    int *last;
    char *removed;
} branches;

static branches find_branches(const dnal_net *net)
{
    branches br = {1, NULL, NULL};
    for (int i = 0; i < net->n_layers; i++)
        if (net->layers[i]->kind == DNAL_GATE && net->layers[i]->branch >= br.n)
            br.n = net->layers[i]->branch + 1;
    br.last = dnal_alloc(sizeof *br.last * (size_t)br.n);
    br.removed = dnal_calloc((size_t)br.n);
    for (int b = 0; b < br.n; b++)
        br.last[b] = -1;
    for (int i = 0; i < net->n_layers; i++)
        if (net->layers[i]->kind == DNAL_GATE && net->layers[i]->branch > 0)
            br.last[net->layers[i]->branch] = i;
    return br;
}

static void free_branches(branches *br)
{
    free(br->last);
    free(br->removed);
}

/* the per-layer rules once the masks are set: a removed branch has every
 * gate off; any other gated layer keeps at least one channel, rounded up
 * to a multiple, adding the closed channels with the largest alpha */
static void finish_layers(dnal_net *net, const branches *br, int64_t multiple)
{
    for (int i = 0; i < net->n_layers; i++) {
        const dnal_layer *l = net->layers[i];
        if (l->kind != DNAL_GATE)
            continue;
        size_t first = l->gate_off, n = l->n_gates;
        if (l->branch > 0 && br->removed[l->branch]) {
            for (size_t c = 0; c < n; c++)
                net->mask[first + c] = 0.0f;
            continue;
        }
        int64_t kept = open_channels(net, l);
        int64_t want = kept < 1 ? 1 : kept;
        if (multiple > 1)
            want = (want + multiple - 1) / multiple * multiple;
        if (want > (int64_t)n)
            want = (int64_t)n;
        for (; kept < want; kept++)
            net->mask[first + (size_t)best_closed(net, first, n)] = 1.0f;
    }
}

/* ---- the budget (search.flops_target, or any other dnal_budget) ---- */

typedef struct budget_fit {
    dnal_net *net;
    const branches *br;
    int64_t multiple;
    const dnal_budget *budget;
    const float *base;  /* masks after the threshold */
    size_t *flip;       /* gated channels in the order they flip */
    size_t n_flip;
    double dense;       /* the budget's cost of the dense network */
} budget_fit;

/* channel indices by their alpha, smallest first (qsort_r: no global key) */
static int by_alpha_up(const void *a, const void *b, void *alpha)
{
    const float *v = alpha;
    float x = v[*(const size_t *)a], y = v[*(const size_t *)b];
    return x < y ? -1 : x > y;
}

/* cost (fraction of dense) with the first k flips applied and the layer
 * rules after them; leaves those masks in net->mask */
static double cost_after(const budget_fit *f, size_t k)
{
    memcpy(f->net->mask, f->base, sizeof(float) * f->net->n_gates);
    for (size_t q = 0; q < k; q++)
        f->net->mask[f->flip[q]] = 1.0f - f->net->mask[f->flip[q]];
    finish_layers(f->net, f->br, f->multiple);
    const dnal_budget_cost *c = &f->budget->cost;
    return c->of(c->arg, f->net, f->net->mask) / f->dense;
}

/* The lambda controller steers the search towards the budget, but what the
 * threshold keeps can still lie on either side of it (docs/design.md,
 * "Budget targeting"). So the masks are moved to the target along the
 * alpha ranking the search learned: above it, the open channels with the
 * smallest alpha close; below it, the closed ones with the largest alpha
 * open; the result is the largest network not above the target. A cost
 * never rises as channels close, so the number of flips is found by
 * bisection (a few dozen cost evaluations, even for ResNet-50's 26k gated
 * channels). Gates of removable branches are left as they are. */
static void fit_budget(dnal_net *net, const branches *br, int64_t multiple,
                       const dnal_budget *budget)
{
    const double target = budget->target;
    budget_fit f = {net, br, multiple, budget, NULL, NULL, 0,
                    budget->cost.of(budget->cost.arg, net, NULL)};
    if (!(f.dense > 0)) { /* nothing to fit: a network that costs nothing */
        finish_layers(net, br, multiple);
        return;
    }
    float *base = dnal_alloc(sizeof(float) * net->n_gates);
    f.flip = dnal_alloc(sizeof(size_t) * (net->n_gates ? net->n_gates : 1));
    memcpy(base, net->mask, sizeof(float) * net->n_gates);
    f.base = base;
    double now = cost_after(&f, 0);
    int closing = now > target;
    for (int i = 0; i < net->n_layers; i++) {
        const dnal_layer *l = net->layers[i];
        if (l->kind != DNAL_GATE || l->branch > 0)
            continue;
        for (size_t c = 0; c < l->n_gates; c++)
            if ((base[l->gate_off + c] != 0.0f) == closing)
                f.flip[f.n_flip++] = l->gate_off + c;
    }
    qsort_r(f.flip, f.n_flip, sizeof *f.flip, by_alpha_up, net->alpha);
    if (!closing) /* open the largest alphas first */
        for (size_t q = 0; q < f.n_flip / 2; q++) {
            size_t t = f.flip[q];
            f.flip[q] = f.flip[f.n_flip - 1 - q];
            f.flip[f.n_flip - 1 - q] = t;
        }
    /* closing: the fewest flips with cost <= target; opening: the most */
    size_t lo = 0, hi = f.n_flip;
    while (lo < hi) {
        size_t mid = lo + (hi - lo + (closing ? 0 : 1)) / 2;
        int under = cost_after(&f, mid) <= target;
        if (closing)
            under ? (hi = mid) : (lo = mid + 1);
        else
            under ? (lo = mid) : (hi = mid - 1);
    }
    cost_after(&f, lo);
    free(base);
    free(f.flip);
}

void dnal_prune(dnal_net *net, double beta, double threshold, int64_t multiple,
                const dnal_budget *budget)
{
    if (multiple <= 0) /* auto: the block of the layout oneDNN runs the network in */
        multiple = dnal_net_channel_block(net);
    for (int i = 0; i < net->n_layers; i++) {
        const dnal_layer *l = net->layers[i];
        if (l->kind != DNAL_GATE)
            continue;
        for (size_t c = 0; c < l->n_gates; c++) {
            double g = dnal_gate_sigmoid(beta, net->alpha[l->gate_off + c]);
            if (!(g > threshold))
                net->mask[l->gate_off + c] = 0.0f;
        }
    }
    branches br = find_branches(net);
    for (int b = 1; b < br.n; b++)
        br.removed[b] = br.last[b] >= 0 && open_channels(net, net->layers[br.last[b]]) == 0;
    /* a set of branches that would lose all of them keeps its best one */
    for (int b = 1; b < br.n; b++) {
        if (br.last[b] < 0)
            continue;
        int set = net->layers[br.last[b]]->branch_set, best = -1, all = 1;
        if (set <= 0)
            continue;
        for (int o = 1; o < br.n && all; o++) {
            if (br.last[o] < 0 || net->layers[br.last[o]]->branch_set != set)
                continue;
            all = br.removed[o];
            if (best < 0 || max_alpha(net, net->layers[br.last[o]]) >
                                max_alpha(net, net->layers[br.last[best]]))
                best = o;
        }
        if (all && best > 0)
            br.removed[best] = 0;
    }
    if (budget && budget->target > 0)
        fit_budget(net, &br, multiple, budget);
    else
        finish_layers(net, &br, multiple);
    free_branches(&br);
}

int dnal_removed_branches(const dnal_net *net, int *total, int *last_gates)
{
    branches br = find_branches(net);
    int removed = 0, count = 0;
    for (int b = 1; b < br.n; b++) {
        if (br.last[b] < 0)
            continue;
        count++;
        if (open_channels(net, net->layers[br.last[b]]) == 0) {
            if (last_gates)
                last_gates[removed] = br.last[b];
            removed++;
        }
    }
    free_branches(&br);
    if (total)
        *total = count;
    return removed;
}

int64_t dnal_kept_channels(const dnal_net *net, const dnal_layer *gate)
{
    return open_channels(net, gate);
}
