/* FLOPs (multiply-adds) and parameter counts, dense or expected under gates. */
#include "dnal/net.h"

/* expected channel count of a tensor: sum of its governing gate's values */
static double channels(const dnal_net *net, const dnal_tensor *t, const float *g)
{
    if (!g || t->gate < 0)
        return (double)t->c;
    const dnal_layer *gate = net->layers[t->gate];
    double sum = 0.0;
    for (size_t c = 0; c < gate->n_gates; c++)
        sum += g[gate->gate_off + c];
    return sum;
}

dnal_cost dnal_net_cost(const dnal_net *net, const float *g)
{
    dnal_cost cost = {0, 0};
    for (int i = 0; i < net->n_layers; i++) {
        const dnal_layer *l = net->layers[i];
        const dnal_tensor *x = l->in[0], *y = l->out;
        double cin = l->n_in ? channels(net, x, g) : 0, cout = y ? channels(net, y, g) : 0;
        int has_bias = l->n_params == 2;
        switch (l->kind) {
        case DNAL_CONV: {
            double k2 = (double)(l->kernel * l->kernel), hw = (double)(y->h * y->w);
            int depthwise = l->groups > 1 && l->groups == x->c;
            /* a depthwise channel reads one input channel; else in/groups */
            double per_out = depthwise ? k2 : k2 * cin / (double)l->groups;
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
