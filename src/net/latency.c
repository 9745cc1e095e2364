/* A network's time predicted from a latency table (docs/design.md,
 * "Latency").
 *
 * The table holds each layer's time timed alone (profile.c) against its
 * channel counts, in steps of the layout's channel block. A gate governs
 * the output channels of the conv before it and the input channels of the
 * convs after it, and a residual stream's channels are those any of its
 * branches keep, so the table is kept per layer, not per gate: the
 * prediction takes every tensor's expected channel count from the liveness
 * under the gates (the same count as the FLOPs, src/net/cost.c) and adds
 * each layer's time at its counts. A dense conv's time is separable in
 * its two counts, t(in, out) = t(in, OUT) t(IN, out) / t(IN, OUT) (its
 * work is in * out; the error this leaves is in docs/design.md), so it needs
 * two curves instead of a grid. What the layers timed alone do not hold
 * (the weight update, the gradient sums of fan-out, the difference between
 * a layer alone and inside the network) is the measured dense step minus
 * the sum of the layers, and is scaled with them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dnal/net.h"

dnal_latency *dnal_latency_new(int n_layers)
{
    dnal_latency *tab = dnal_calloc(sizeof *tab);
    tab->n_layers = n_layers;
    tab->layers = dnal_calloc(sizeof *tab->layers * ((size_t)n_layers + 1));
    return tab;
}

void dnal_latency_curve_alloc(dnal_latency_curve *c, int n)
{
    c->n = n;
    c->channels = dnal_calloc(sizeof *c->channels * ((size_t)n + 1));
    for (int w = 0; w < 2; w++)
        c->ms[w] = dnal_calloc(sizeof *c->ms[w] * ((size_t)n + 1));
}

static void curve_free(dnal_latency_curve *c)
{
    dnal_free(c->channels);
    dnal_free(c->ms[0]);
    dnal_free(c->ms[1]);
}

void dnal_latency_free(dnal_latency *tab)
{
    if (!tab)
        return;
    for (int i = 0; i < tab->n_layers; i++) {
        curve_free(&tab->layers[i].out);
        curve_free(&tab->layers[i].in);
        curve_free(&tab->layers[i].scatter);
        curve_free(&tab->layers[i].widen);
    }
    dnal_free(tab->layers);
    dnal_free(tab->of_layer);
    dnal_free(tab);
}

double dnal_latency_at(const dnal_latency_curve *c, double channels, int which)
{
    const double *ms = c->ms[which];
    if (channels <= (double)c->channels[0])
        return ms[0];
    for (int k = 1; k < c->n; k++)
        if (channels <= (double)c->channels[k]) {
            double x0 = (double)c->channels[k - 1], x1 = (double)c->channels[k];
            return ms[k - 1] + (ms[k] - ms[k - 1]) * (channels - x0) / (x1 - x0);
        }
    return ms[c->n - 1];
}

void dnal_latency_bind(dnal_latency *tab, const dnal_net *net, const char *origin)
{
    dnal_free(tab->of_layer);
    tab->of_layer = dnal_alloc(sizeof *tab->of_layer * ((size_t)net->n_layers + 1));
    tab->n_bound = net->n_layers;
    for (int i = 0; i < net->n_layers; i++) {
        const dnal_layer *l = net->layers[i];
        tab->of_layer[i] = -1;
        if (!dnal_net_profiled_layer(net, i))
            continue;
        for (int e = 0; e < tab->n_layers && tab->of_layer[i] < 0; e++)
            if (!strcmp(tab->layers[e].name, l->name))
                tab->of_layer[i] = e;
        if (tab->of_layer[i] < 0)
            dnal_fatal(DNAL_EXIT_DATA, "%s: no entry for layer %s of the network (a table of "
                       "another model, width or input?)", origin, l->name);
        const dnal_latency_layer *e = &tab->layers[tab->of_layer[i]];
        int64_t out_c = l->out ? l->out->c : l->in[0]->c;
        if (e->kind != (int)l->kind || e->in_channels != l->in[0]->c || e->out_channels != out_c)
            dnal_fatal(DNAL_EXIT_DATA, "%s: layer %s is a %s of %lld to %lld channels in the "
                       "table, a %s of %lld to %lld in the network", origin, l->name,
                       dnal_layer_kind_name((dnal_layer_kind)e->kind),
                       (long long)e->in_channels, (long long)e->out_channels,
                       dnal_layer_kind_name(l->kind), (long long)l->in[0]->c,
                       (long long)out_c);
    }
}

static double live_count(const dnal_net *net, const dnal_tensor *t)
{
    const float *live = dnal_net_liveness(net, t);
    double n = 0;
    for (int64_t c = 0; c < t->c; c++)
        n += live[c];
    return n;
}

/* how a compact network sums the two inputs of an add: 0 adds them (the
 * same channels), 1 scatters one into the other (one holds every channel
 * of the sum), 2 widens one first (neither does: only with 0/1 masks) */
static int sum_form(const dnal_net *net, const dnal_layer *l)
{
    const float *a = dnal_net_liveness(net, l->in[0]), *b = dnal_net_liveness(net, l->in[1]);
    int same = 1, a_all = 1, b_all = 1, binary = 1;
    for (int64_t c = 0; c < l->in[0]->c; c++) {
        same &= a[c] == b[c];
        a_all &= a[c] >= b[c];
        b_all &= b[c] >= a[c];
        binary &= (a[c] == 0 || a[c] == 1) && (b[c] == 0 || b[c] == 1);
    }
    return same ? 0 : a_all || b_all || !binary ? 1 : 2;
}

/* layer i's time at the counts of the liveness computed last; dense: the
 * dense network itself, every tensor at its width (its padded shortcut and
 * adds as they are, not as a compact network would run them) */
static double layer_time(const dnal_latency *tab, const dnal_net *net, int i, int which,
                         int dense)
{
    const dnal_layer *l = net->layers[i];
    const dnal_latency_layer *e = &tab->layers[tab->of_layer[i]];
    if (dense)
        return e->out.ms[which][e->out.n - 1];
    double cin = live_count(net, l->in[0]), cout = l->out ? live_count(net, l->out) : cin;
    if (l->kind == DNAL_ADD) { /* a dead input leaves the other: nothing to add */
        double cb = live_count(net, l->in[1]);
        if (cin <= 0 || cb <= 0)
            return 0;
        int form = e->scatter.n > 0 ? sum_form(net, l) : 0;
        if (form == 2 && e->widen.n > 0)
            return dnal_latency_at(&e->widen, cout, which);
        return dnal_latency_at(form ? &e->scatter : &e->out, cout, which);
    }
    if (cout <= 0 || cin <= 0) /* a dead branch vanishes */
        return 0;
    if (l->kind == DNAL_LINEAR)
        return dnal_latency_at(&e->out, cin, which);
    double t = dnal_latency_at(&e->out, cout, which);
    if (e->in.n > 0) {
        double dense = e->out.ms[which][e->out.n - 1];
        t *= dense > 0 ? dnal_latency_at(&e->in, cin, which) / dense : 1.0;
    }
    return t;
}

double dnal_latency_predict(const dnal_latency *tab, const dnal_net *net, const float *g,
                            int which)
{
    DNAL_ASSERT(tab->of_layer && tab->n_bound == net->n_layers);
    if (g)
        dnal_net_cost(net, g); /* the liveness */
    double sum = 0;
    for (int i = 0; i < net->n_layers; i++)
        if (tab->of_layer[i] >= 0)
            sum += layer_time(tab, net, i, which, g == NULL);
    double layers = tab->layers_ms[which], rest = tab->step_ms[which] - layers;
    return sum + (layers > 0 ? rest * sum / layers : 0);
}

double dnal_latency_gate_time(const dnal_latency *tab, const dnal_net *net, int gate,
                              double channels, int which, float *scratch)
{
    const dnal_layer *l = net->layers[gate];
    DNAL_ASSERT(l->kind == DNAL_GATE);
    for (size_t c = 0; c < net->n_gates; c++)
        scratch[c] = 1.0f;
    for (size_t c = 0; c < l->n_gates; c++) {
        double open = channels - (double)c;
        scratch[l->gate_off + c] = open >= 1 ? 1.0f : open > 0 ? (float)open : 0.0f;
    }
    return dnal_latency_predict(tab, net, scratch, which);
}
