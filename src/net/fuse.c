/* Fusion: chains of layers that run as one, picked at finalize.
 *
 *   BN -> gate -> ReLU   one BN primitive: the gate folded into its scale
 *   BN -> gate           and shift, the ReLU fused on its output
 *   BN -> ReLU           (batchnorm.c)
 *   add -> ReLU          one binary primitive with a ReLU post-op (add.c)
 *
 * A chain links a layer to the one layer reading its output. The layers it
 * absorbs are neither bound nor run, and the tensors inside the chain share
 * the storage of its output (tensor->alias): the head writes the chain's
 * output and reads its gradient. The graph itself (gate governance,
 * liveness, FLOPs, compaction, names) is untouched. ReLU6 is not fused
 * (oneDNN 2.6's BN fuses only ReLU): a BN -> gate -> ReLU6 chain folds the
 * gate and leaves the ReLU6. */
#include "dnal/net.h"

/* the one layer reading t, or NULL (t read by none or by several) */
static dnal_layer *sole_reader(const dnal_net *net, const dnal_tensor *t)
{
    dnal_layer *r = NULL;
    for (int i = t->producer + 1; i < net->n_layers; i++)
        for (int k = 0; k < net->layers[i]->n_in; k++)
            if (net->layers[i]->in[k] == t) {
                if (r)
                    return NULL;
                r = net->layers[i];
            }
    return r;
}

static void absorb(dnal_layer *l, dnal_tensor *chain_out)
{
    l->absorbed = 1;
    l->in[0]->alias = chain_out;
}

static void fuse_bn(dnal_net *net, dnal_layer *bn)
{
    dnal_layer *gate = NULL, *next = sole_reader(net, bn->out);
    if (next && next->kind == DNAL_GATE) {
        gate = next;
        next = sole_reader(net, gate->out);
    }
    dnal_layer *relu = next && next->kind == DNAL_RELU ? next : NULL;
    if (!gate && !relu)
        return;
    int relu_fused = dnal_bn_fuse(bn, net->ctx, gate, relu != NULL);
    dnal_tensor *out = relu_fused ? relu->out : gate ? gate->out : NULL;
    if (!out)
        return; /* no gate, and the ReLU stays apart */
    if (gate) {
        absorb(gate, out);
        net->n_fused_gates++;
    }
    if (relu_fused) {
        absorb(relu, out);
        net->n_fused_relus++;
    }
}

static void fuse_add(dnal_net *net, dnal_layer *add)
{
    dnal_layer *relu = sole_reader(net, add->out);
    if (!relu || relu->kind != DNAL_RELU || !dnal_add_fuse_relu(add, net->ctx))
        return;
    absorb(relu, relu->out);
    net->n_fused_relus++;
}

void dnal_net_fuse(dnal_net *net)
{
    for (int i = 0; i < net->n_layers; i++) {
        dnal_layer *l = net->layers[i];
        if (l->kind == DNAL_BN)
            fuse_bn(net, l);
        else if (l->kind == DNAL_ADD)
            fuse_add(net, l);
    }
}
