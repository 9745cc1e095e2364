/* One layer of a network timed alone (dnal profile; docs/design.md,
 * "Latency"): the layer rebuilt with other channel counts in a small network
 * of its own, in the network's activation layout, with the layers that fuse
 * into it in the network (a BN's ReLU, an add's ReLU) behind it, so that
 * it runs the primitives it would run inside a compact network of those
 * widths. Layers that only feed it (the second input of an add) are helpers
 * whose time is not counted. Each repetition is timed per layer (net->profile);
 * the median of the repetitions is returned. */
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "dnal/net.h"

/* the one layer reading t in net, or -1 */
static int sole_reader(const dnal_net *net, const dnal_tensor *t)
{
    int r = -1;
    for (int i = t->producer + 1; i < net->n_layers; i++)
        for (int k = 0; k < net->layers[i]->n_in; k++)
            if (net->layers[i]->in[k] == t) {
                if (r >= 0)
                    return -1;
                r = i;
            }
    return r;
}

/* the ReLU that fuses into layer l in net (BN: behind its gate, if any), or -1 */
static int fused_relu(const dnal_net *net, const dnal_layer *l)
{
    if (l->kind != DNAL_BN && l->kind != DNAL_ADD)
        return -1;
    int r = sole_reader(net, l->out);
    if (r >= 0 && l->kind == DNAL_BN && net->layers[r]->kind == DNAL_GATE)
        r = sole_reader(net, net->layers[r]->out);
    return r >= 0 && net->layers[r]->kind == DNAL_RELU && net->layers[r]->absorbed ? r : -1;
}

int dnal_net_profiled_layer(const dnal_net *net, int layer)
{
    const dnal_layer *l = net->layers[layer];
    return !l->absorbed && l->kind != DNAL_GATE;
}

void dnal_net_layer_signature(const dnal_net *net, int layer, int64_t cin, int64_t cout,
                              dnal_layer_signature *s)
{
    const dnal_layer *l = net->layers[layer];
    memset(s, 0, sizeof *s); /* compared with memcmp */
    s->kind = (int)l->kind;
    s->cin = cin;
    s->cout = cout;
    s->h = l->in[0]->h;
    s->w = l->in[0]->w;
    s->ndims = l->in[0]->ndims;
    s->kernel = l->kernel;
    s->stride = l->stride;
    s->pad = l->pad;
    s->depthwise = l->kind == DNAL_CONV && dnal_layer_is_depthwise(l);
    s->grouped = l->kind == DNAL_CONV && !s->depthwise && l->groups > 1 ? l->groups : 0;
    s->bias = l->n_params == 2;
    s->from_input = l->in[0] == net->input;
    s->n_in = l->n_in;
    s->relu = fused_relu(net, l) >= 0;
    s->out_features = l->kind == DNAL_LINEAR || l->kind == DNAL_SOFTMAX_CE ? l->out ? l->out->c : l->in[0]->c : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* the standalone network of signature s for a batch; *first: its first
 * layer that counts (the layers before it are helpers) */
static dnal_net *standalone(const dnal_net *net, const dnal_layer_signature *s, int64_t batch,
                            int *first)
{
    const dnal_ctx *ctx = net->ctx;
    int64_t cin = s->cin, dims[4] = {batch, cin, s->h, s->w};
    dnal_md in_md;
    if (s->ndims == 2)
        in_md = dnal_md_plain(2, dims);
    else if (s->from_input)
        in_md = dnal_md_plain(4, dims);
    else
        in_md = dnal_md_like(&net->layout, 4, dims);
    dnal_net *t = dnal_net_create_md(ctx, &in_md);
    t->layout = net->layout;
    t->input->need_grad = !s->from_input;
    dnal_tensor *x = t->input, *y = NULL;
    *first = 0;
    switch ((dnal_layer_kind)s->kind) {
    case DNAL_CONV: {
        dnal_conv_cfg cfg = {.out_c = s->cout, .kernel = s->kernel, .stride = s->stride,
                             .pad = s->pad, .groups = s->depthwise ? s->cout : s->grouped ? s->grouped : 1,
                             .bias = s->bias};
        y = dnal_net_conv(t, "layer", x, &cfg);
        break;
    }
    case DNAL_BN:
        y = dnal_net_bn(t, "layer", x);
        break;
    case DNAL_RELU:
    case DNAL_RELU6:
        y = dnal_net_relu(t, "layer", x, s->kind == DNAL_RELU6 ? 6.0f : 0.0f);
        break;
    case DNAL_MAXPOOL:
    case DNAL_AVGPOOL:
        y = dnal_net_pool(t, "layer", (dnal_layer_kind)s->kind, x, s->kernel, s->stride, s->pad);
        break;
    case DNAL_GAP:
        y = dnal_net_gap(t, "layer", x);
        break;
    case DNAL_LINEAR:
        y = dnal_net_linear(t, "layer", x, s->out_features, s->bias);
        break;
    case DNAL_ADD: { /* the second input made by a helper */
        dnal_tensor *b = dnal_net_relu(t, "helper", x, 0);
        *first = 1;
        if (!s->scatter) {
            y = dnal_net_sum(t, "layer", x, b);
            break;
        }
        int64_t *idx = dnal_alloc(sizeof *idx * (size_t)(cin + 1));
        for (int64_t k = 0; k < cin; k++)
            idx[k] = k;
        if (s->scatter == 2) /* neither input holds every channel: one widened first */
            b = dnal_net_scatter_add(t, "widen", b, NULL, cin, idx);
        y = dnal_net_scatter_add(t, "layer", x, b, cin, idx);
        free(idx);
        break;
    }
    case DNAL_SCATTER_ADD: { /* the zero-padded shortcut: cin channels spread over cout */
        int64_t *idx = dnal_alloc(sizeof *idx * (size_t)(cin + 1));
        for (int64_t k = 0; k < cin; k++)
            idx[k] = k * s->cout / cin;
        dnal_tensor *base = NULL;
        if (s->n_in == 2) { /* onto a base of cout channels (an imported graph's Pad and Add,
                             * fused): the base made by a helper */
            base = dnal_net_scatter_add(t, "helper", x, NULL, s->cout, idx);
            *first = 1;
        }
        y = dnal_net_scatter_add(t, "layer", x, base, s->cout, idx);
        free(idx);
        break;
    }
    case DNAL_SOFTMAX_CE:
        dnal_net_softmax_ce(t, "layer", x);
        break;
    default:
        dnal_fatal(DNAL_EXIT_SOFTWARE, "profile: layer kind %s cannot be timed alone",
                   dnal_layer_kind_name((dnal_layer_kind)s->kind));
    }
    if (s->relu)
        dnal_net_relu(t, "relu", y, 0);
    dnal_net_finalize(t);
    return t;
}

double dnal_net_time_signature(const dnal_net *net, const dnal_layer_signature *s, int infer,
                               int64_t batch, int reps)
{
    int first;
    dnal_net *t = standalone(net, s, infer ? 1 : batch, &first);
    int32_t *labels = NULL;
    if (t->loss) {
        labels = dnal_calloc(sizeof *labels * (size_t)(infer ? 1 : batch));
        dnal_net_set_labels(t, labels);
    }
    dnal_pass p = {.training = !infer, .gate_mode = DNAL_GATE_OFF, .beta = 1};
    double *ms = dnal_alloc(sizeof *ms * (size_t)(reps + 1));
    t->profile = 1;
    for (int r = -1; r < reps; r++) { /* one warm-up */
        memset(t->fwd_time, 0, sizeof *t->fwd_time * (size_t)t->n_layers);
        memset(t->bwd_time, 0, sizeof *t->bwd_time * (size_t)t->n_layers);
        dnal_net_forward(t, &p);
        if (!infer)
            dnal_net_backward(t, &p, NULL, NULL);
        double sum = 0;
        for (int i = first; i < t->n_layers; i++)
            sum += t->fwd_time[i] + t->bwd_time[i];
        if (r >= 0)
            ms[r] = sum * 1e3;
    }
    qsort(ms, (size_t)reps, sizeof *ms, cmp_double);
    double median = reps % 2 ? ms[reps / 2] : 0.5 * (ms[reps / 2 - 1] + ms[reps / 2]);
    dnal_free(ms);
    dnal_free(labels);
    dnal_net_destroy(t);
    return median;
}
