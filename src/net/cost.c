/* FLOPs (multiply-adds) and parameter counts, dense or expected under gates,
 * through channel liveness (see dnal_net_cost in include/dnal/net.h), in
 * dnal's exact count or the authors' (dnal_net_cost_as). */
#include "dnal/net.h"

static float *live_of(const dnal_net *net, const dnal_tensor *t)
{
    return net->live + net->live_off[t->id];
}

const float *dnal_net_liveness(const dnal_net *net, const dnal_tensor *t)
{
    return live_of(net, t);
}

static void set_all(float *l, int64_t c, float v)
{
    for (int64_t i = 0; i < c; i++)
        l[i] = v;
}

/* liveness of every tensor, in layer order */
static void propagate(const dnal_net *net, const float *g, dnal_count count)
{
    set_all(live_of(net, net->input), net->input->c, 1.0f);
    for (int i = 0; i < net->n_layers; i++) {
        const dnal_layer *l = net->layers[i];
        const dnal_tensor *y = l->out;
        if (!y)
            continue;
        float *ly = live_of(net, y);
        if (y->gate >= 0) { /* governed: the gate's values */
            const dnal_layer *gate = net->layers[y->gate];
            for (int64_t c = 0; c < y->c; c++)
                ly[c] = g ? g[gate->gate_off + c] : 1.0f;
            continue;
        }
        const float *la = live_of(net, l->in[0]);
        if (dnal_layer_keeps_channels(l)) {
            for (int64_t c = 0; c < y->c; c++)
                ly[c] = la[c];
            continue;
        }
        switch (l->kind) {
        case DNAL_ADD: {
            if (count == DNAL_COUNT_AUTHORS && l->residual) { /* the branch decides */
                for (int64_t c = 0; c < y->c; c++)
                    ly[c] = la[c];
                break;
            }
            const float *lb = live_of(net, l->in[1]);
            for (int64_t c = 0; c < y->c; c++)
                ly[c] = 1.0f - (1.0f - la[c]) * (1.0f - lb[c]);
            break;
        }
        case DNAL_SCATTER_ADD: {
            const int64_t *idx = dnal_scatter_add_indices(l);
            if (l->n_in == 2) {
                const float *lbase = live_of(net, l->in[1]);
                for (int64_t c = 0; c < y->c; c++)
                    ly[c] = lbase[c];
            } else {
                set_all(ly, y->c, 0.0f);
            }
            for (int64_t k = 0; k < l->in[0]->c; k++)
                ly[idx[k]] = 1.0f - (1.0f - ly[idx[k]]) * (1.0f - la[k]);
            break;
        }
        default:
            set_all(ly, y->c, 1.0f);
            break;
        }
    }
}

static double channels(const dnal_net *net, const dnal_tensor *t)
{
    const float *l = live_of(net, t);
    double sum = 0.0;
    for (int64_t c = 0; c < t->c; c++)
        sum += l[c];
    return sum;
}

dnal_cost dnal_net_cost(const dnal_net *net, const float *g)
{
    return dnal_net_cost_as(net, g, DNAL_COUNT_EXACT);
}

dnal_cost dnal_net_cost_as(const dnal_net *net, const float *g, dnal_count count)
{
    dnal_cost cost = {0, 0};
    propagate(net, g, count);
    for (int i = 0; i < net->n_layers; i++) {
        const dnal_layer *l = net->layers[i];
        const dnal_tensor *x = l->in[0], *y = l->out;
        double cin = l->n_in ? channels(net, x) : 0, cout = y ? channels(net, y) : 0;
        /* the authors' unmasked convolutions (projection shortcuts) count whole */
        if (count == DNAL_COUNT_AUTHORS && l->kind == DNAL_CONV && y->gate < 0)
            cin = (double)x->c;
        int has_bias = l->n_params == 2;
        switch (l->kind) {
        case DNAL_CONV: {
            double k2 = (double)(l->kernel * l->kernel), hw = (double)(y->h * y->w);
            /* a depthwise channel reads one input channel; else in/groups */
            double per_out = dnal_layer_is_depthwise(l) ? k2 : k2 * cin / (double)l->groups;
            cost.flops += hw * cout * per_out;
            cost.params += cout * per_out + (has_bias ? cout : 0);
            break;
        }
        case DNAL_LINEAR: {
            double in = cin * (double)(x->h * x->w), out = (double)y->c;
            cost.flops += in * out;
            cost.params += in * out + (has_bias ? out : 0);
            break;
        }
        case DNAL_BN:
            cost.params += 2 * cin;
            break;
        default:
            break;
        }
    }
    return cost;
}

void dnal_net_gate_values(const dnal_net *net, const dnal_pass *p, float *g)
{
    for (size_t c = 0; c < net->n_gates; c++)
        g[c] = dnal_gate_value(p->gate_mode, p->beta, net->alpha[c], net->mask[c]);
}
