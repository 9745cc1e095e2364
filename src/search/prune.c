/* Pruning (DESIGN.md section 1, stage 3): m_c = m_c AND [sigmoid(beta*alpha_c)
 * > threshold]; a gated layer never loses its last channel (the largest alpha
 * stays); with prune.channel_multiple M a layer keeps a multiple of M
 * channels (rounded up with the next largest alphas), because oneDNN's
 * blocked layouts make odd widths slow.
 *
 * Removable branches (supernet candidates, layer->branch): a branch whose
 * last gate (the one nearest its output: the projection's) closes every
 * channel is removed, all its gates masked off; its output was exactly zero
 * in pruned mode, so the compact network simply leaves it out. A set of
 * branches (layer->branch_set: an edge without shortcut) keeps at least one:
 * if all would go, the one whose last gate has the largest alpha stays. A
 * branch that stays follows the usual rule in each of its gates. */
#include <math.h>
#include <stdlib.h>

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
    br.last = malloc(sizeof *br.last * (size_t)br.n);
    br.removed = calloc((size_t)br.n, 1);
    DNAL_ASSERT(br.last && br.removed);
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

void dnal_prune(dnal_net *net, double beta, double threshold, int64_t multiple)
{
    for (int i = 0; i < net->n_layers; i++) {
        const dnal_layer *l = net->layers[i];
        if (l->kind != DNAL_GATE)
            continue;
        for (size_t c = 0; c < l->n_gates; c++) {
            double g = 1.0 / (1.0 + exp(-beta * net->alpha[l->gate_off + c]));
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
    for (int i = 0; i < net->n_layers; i++) {
        const dnal_layer *l = net->layers[i];
        if (l->kind != DNAL_GATE)
            continue;
        size_t first = l->gate_off, n = l->n_gates;
        if (l->branch > 0 && br.removed[l->branch]) {
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
