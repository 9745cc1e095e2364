/* Pruning (DESIGN.md section 1, stage 3): m_c = m_c AND [sigmoid(beta*alpha_c)
 * > threshold]; a gated layer never loses its last channel (the largest alpha
 * stays); with prune.channel_multiple M a layer keeps a multiple of M
 * channels (rounded up with the next largest alphas), because oneDNN's
 * blocked layouts make odd widths slow. */
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

void dnal_prune(dnal_net *net, double beta, double threshold, int64_t multiple)
{
    for (int i = 0; i < net->n_layers; i++) {
        const dnal_layer *l = net->layers[i];
        if (l->kind != DNAL_GATE)
            continue;
        size_t first = l->gate_off, n = l->n_gates;
        int64_t kept = 0;
        for (size_t c = 0; c < n; c++) {
            double g = 1.0 / (1.0 + exp(-beta * net->alpha[first + c]));
            if (!(g > threshold))
                net->mask[first + c] = 0.0f;
            kept += net->mask[first + c] != 0.0f;
        }
        int64_t want = kept < 1 ? 1 : kept;
        if (multiple > 1)
            want = (want + multiple - 1) / multiple * multiple;
        if (want > (int64_t)n)
            want = (int64_t)n;
        for (; kept < want; kept++)
            net->mask[first + (size_t)best_closed(net, first, n)] = 1.0f;
    }
}

int64_t dnal_kept_channels(const dnal_net *net, const dnal_layer *gate)
{
    int64_t kept = 0;
    for (size_t c = 0; c < gate->n_gates; c++)
        kept += net->mask[gate->gate_off + c] != 0.0f;
    return kept;
}
