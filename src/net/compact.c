/* The compact network of a masked one: physically smaller, same function.
 *
 * Every tensor keeps the channels alive under the masks (liveness, cost.c):
 * a conv computes only its kept outputs from its kept inputs, BN and the
 * channel-wise layers follow their input, gates vanish (a kept channel's
 * gate is 1), and a sum whose inputs keep different channels becomes a
 * scatter-add at their indices within the kept channels of the sum, so a
 * compact residual branch adds its surviving channels into the shortcut.
 * Weights, biases, BN parameters and running statistics are copied. The
 * compact network picks its own activation layout (dnal_net_build): its odd
 * widths may have no fast kernel in the dense network's blocked layout.
 *
 * Dead branches: a layer whose output keeps no channel vanishes (a removed
 * supernet candidate: every gate of it closed, so it only ever added zeros),
 * and a sum with such an input becomes its other input. Any other layer
 * reading a tensor that keeps no channel, or a kept tensor left feeding only
 * vanished layers, has no exact compact form: that is an error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnal/net.h"

typedef struct chans { /* the dense channels a compact tensor holds, in order */
    int64_t n;
    int64_t *idx;
} chans;

typedef struct copy_job { /* weights to copy once the compact net is finalized */
    dnal_layer *to;
    const dnal_layer *from;
    const chans *in, *out;
} copy_job;

typedef struct compactor {
    dnal_net *dense, *net;
    chans *kept;        /* per dense tensor */
    int *used;          /* per dense tensor: layers of the dense / compact net reading it */
    int *used_compact;
    dnal_tensor **map;  /* per dense tensor: its compact tensor */
    copy_job *jobs;
    int n_jobs;
    char name[96];
} compactor;

static int same(const chans *a, const chans *b)
{
    return a->n == b->n && !memcmp(a->idx, b->idx, sizeof *a->idx * (size_t)a->n);
}

/* positions of `part`'s channels within `whole` (part is a subset) */
static int64_t *positions(const chans *part, const chans *whole)
{
    int64_t *pos = dnal_alloc(sizeof *pos * (size_t)(part->n + 1));
    for (int64_t k = 0, j = 0; k < part->n; k++) {
        while (j < whole->n && whole->idx[j] != part->idx[k])
            j++;
        DNAL_ASSERT(j < whole->n);
        pos[k] = j;
    }
    return pos;
}

/* tensor t (holding `have`) widened with zeros to the channels `want` */
static dnal_tensor *widen(compactor *c, const char *name, dnal_tensor *t, const chans *have,
                          const chans *want)
{
    if (same(have, want))
        return t;
    int64_t *pos = positions(have, want);
    dnal_tensor *w = dnal_net_scatter_add(c->net, name, t, NULL, want->n, pos);
    free(pos);
    return w;
}

static const char *named(compactor *c, const char *base, const char *suffix)
{
    snprintf(c->name, sizeof c->name, "%s%s", base, suffix);
    return c->name;
}

static void job(compactor *c, const dnal_layer *from, const chans *in, const chans *out)
{
    c->jobs[c->n_jobs++] = (copy_job){c->net->layers[c->net->n_layers - 1], from, in, out};
}

static const char *producer_name(const compactor *c, const dnal_tensor *t)
{
    return t->producer >= 0 ? c->dense->layers[t->producer]->name : "the input";
}

static void compact_layer(compactor *c, const dnal_layer *l)
{
    if (l->out && c->kept[l->out->id].n == 0) { /* a dead branch: the layer vanishes */
        c->map[l->out->id] = NULL;
        return;
    }
    for (int k = 0; k < l->n_in; k++) {
        if (c->kept[l->in[k]->id].n > 0)
            continue;
        if (l->kind != DNAL_ADD)
            dnal_fatal(DNAL_EXIT_USAGE, "compact: %s keeps channels but its input (%s's output) keeps none",
                       l->name, producer_name(c, l->in[k]));
        /* a sum with a dead input is its other input (same channels) */
        const dnal_tensor *other = l->in[1 - k];
        DNAL_ASSERT(same(&c->kept[other->id], &c->kept[l->out->id]));
        c->map[l->out->id] = c->map[other->id];
        c->used_compact[other->id]++;
        return;
    }
    for (int k = 0; k < l->n_in; k++)
        c->used_compact[l->in[k]->id]++;
    const dnal_tensor *x = l->in[0];
    dnal_tensor *cx = c->map[x->id];
    const chans *kin = &c->kept[x->id], *kout = l->out ? &c->kept[l->out->id] : NULL;
    dnal_tensor *y = NULL;
    switch (l->kind) {
    case DNAL_CONV: {
        int depthwise = dnal_layer_is_depthwise(l);
        dnal_conv_cfg cfg = {.out_c = kout->n, .kernel = l->kernel, .stride = l->stride,
                             .pad = l->pad, .groups = depthwise ? kout->n : l->groups,
                             .bias = l->n_params == 2};
        DNAL_ASSERT(!depthwise || same(kin, kout));
        DNAL_ASSERT(depthwise || l->groups == 1 || (kin->n == x->c && kout->n == l->out->c));
        y = dnal_net_conv(c->net, l->name, cx, &cfg);
        job(c, l, kin, kout);
        break;
    }
    case DNAL_BN:
        y = dnal_net_bn(c->net, l->name, cx);
        job(c, l, kin, kout);
        break;
    case DNAL_RELU:
    case DNAL_RELU6:
        y = dnal_net_relu(c->net, l->name, cx, l->kind == DNAL_RELU6 ? 6.0f : 0.0f);
        break;
    case DNAL_MAXPOOL:
    case DNAL_AVGPOOL:
        y = dnal_net_pool(c->net, l->name, l->kind, cx, l->kernel, l->stride, l->pad);
        break;
    case DNAL_GAP:
        y = dnal_net_gap(c->net, l->name, cx);
        break;
    case DNAL_GATE: /* a kept channel's gate is 1: nothing to compute */
        y = cx;
        break;
    case DNAL_LINEAR:
        y = dnal_net_linear(c->net, l->name, cx, l->out->c, l->n_params == 2);
        job(c, l, kin, kout);
        break;
    case DNAL_ADD: {
        const chans *kb = &c->kept[l->in[1]->id];
        dnal_tensor *cb = c->map[l->in[1]->id];
        if (same(kin, kout) && same(kb, kout)) {
            y = dnal_net_sum(c->net, l->name, cx, cb);
        } else { /* the input keeping all the sum's channels is the base */
            int a_is_base = same(kin, kout) || !same(kb, kout);
            dnal_tensor *base = a_is_base ? cx : cb, *part = a_is_base ? cb : cx;
            const chans *kbase = a_is_base ? kin : kb, *kpart = a_is_base ? kb : kin;
            base = widen(c, named(c, l->name, ".widen"), base, kbase, kout);
            int64_t *pos = positions(kpart, kout);
            y = dnal_net_scatter_add(c->net, l->name, part, base, kout->n, pos);
            free(pos);
        }
        break;
    }
    case DNAL_SCATTER_ADD: {
        const int64_t *idx = dnal_scatter_add_indices(l);
        chans placed = {kin->n, dnal_alloc(sizeof(int64_t) * (size_t)(kin->n + 1))};
        for (int64_t k = 0; k < kin->n; k++)
            placed.idx[k] = idx[kin->idx[k]];
        int64_t *pos = positions(&placed, kout);
        dnal_tensor *base = NULL;
        if (l->n_in == 2)
            base = widen(c, named(c, l->name, ".widen"), c->map[l->in[1]->id],
                         &c->kept[l->in[1]->id], kout);
        y = dnal_net_scatter_add(c->net, l->name, cx, base, kout->n, pos);
        free(pos);
        free(placed.idx);
        break;
    }
    case DNAL_SOFTMAX_CE:
        dnal_net_softmax_ce(c->net, l->name, cx);
        break;
    default:
        dnal_fatal(DNAL_EXIT_USAGE, "compact: layer kind %s is not supported",
                   dnal_layer_kind_name(l->kind));
    }
    if (l->out)
        c->map[l->out->id] = y;
}

/* dense[rows out, cols in, k...] -> compact[kept out, kept in, k...] */
static void copy_weights(const dnal_net *dense, dnal_net *net, const copy_job *j)
{
    const dnal_layer *from = j->from;
    dnal_layer *to = j->to;
    for (int p = 0; p < from->n_params; p++) {
        const float *src = dnal_net_param(dense, from, p);
        float *dst = dnal_net_param(net, to, p);
        const dnal_param *dp = &from->param[p];
        if (dp->role != DNAL_PARAM_WEIGHT) { /* biases, BN scale and shift: per output channel */
            for (int64_t o = 0; o < j->out->n; o++)
                dst[o] = src[j->out->idx[o]];
            continue;
        }
        int64_t rows_in = dp->dims[1], inner = 1;
        for (int d = 2; d < dp->ndims; d++)
            inner *= dp->dims[d];
        int depthwise = dnal_layer_is_depthwise(from);
        int64_t spatial = from->kind == DNAL_LINEAR ? from->in[0]->h * from->in[0]->w : 1;
        int64_t cin = depthwise ? 1 : j->in->n;
        for (int64_t o = 0; o < j->out->n; o++)
            for (int64_t i = 0; i < cin; i++) {
                int64_t di = depthwise ? 0 : j->in->idx[i];
                /* linear: input features are (channel, position) in NCHW order */
                const float *s = src + j->out->idx[o] * rows_in * inner + di * spatial * inner;
                float *d = dst + (o * cin + i) * spatial * inner;
                memcpy(d, s, sizeof *d * (size_t)(spatial * inner));
            }
    }
    if (from->kind == DNAL_BN) {
        size_t cd = from->n_stats / 2, cc = to->n_stats / 2;
        const float *src = dense->stats + from->stats_off;
        float *dst = net->stats + to->stats_off;
        for (size_t o = 0; o < cc; o++) {
            dst[o] = src[j->out->idx[o]];
            dst[cc + o] = src[cd + j->out->idx[o]];
        }
    }
}

/* The compact layers into `net` (a dnal_net_build_fn: once per layout tried) */
static void compact_layers(dnal_net *net, void *arg)
{
    compactor *c = arg;
    const dnal_net *dense = c->dense;
    c->net = net;
    c->n_jobs = 0;
    memset(c->used_compact, 0, sizeof *c->used_compact * (size_t)dense->n_tensors);
    memset(c->map, 0, sizeof *c->map * (size_t)dense->n_tensors);
    c->map[dense->input->id] = net->input;
    for (int i = 0; i < dense->n_layers; i++)
        compact_layer(c, dense->layers[i]);
    for (int t = 0; t < dense->n_tensors; t++)
        if (c->kept[t].n > 0 && c->used[t] > 0 && c->used_compact[t] == 0)
            dnal_fatal(DNAL_EXIT_USAGE, "compact: %s keeps channels that only removed layers read",
                       producer_name(c, dense->tensors[t]));
    DNAL_ASSERT(net->loss);
}

dnal_net *dnal_net_compact(dnal_net *dense, int64_t batch)
{
    DNAL_ASSERT(dense->finalized && dense->input->ndims == 4);
    compactor c = {.dense = dense};
    dnal_net_cost(dense, dense->mask); /* liveness under the masks */
    c.kept = dnal_calloc(sizeof *c.kept * (size_t)dense->n_tensors);
    c.map = dnal_calloc(sizeof *c.map * (size_t)dense->n_tensors);
    c.jobs = dnal_calloc(sizeof *c.jobs * (size_t)dense->n_layers);
    for (int t = 0; t < dense->n_tensors; t++) {
        const dnal_tensor *x = dense->tensors[t];
        const float *live = dnal_net_liveness(dense, x);
        chans *k = &c.kept[t];
        k->idx = dnal_alloc(sizeof *k->idx * (size_t)(x->c + 1));
        for (int64_t ch = 0; ch < x->c; ch++)
            if (live[ch] > 0.5f)
                k->idx[k->n++] = ch;
    }
    c.used = dnal_calloc(sizeof *c.used * (size_t)dense->n_tensors);
    c.used_compact = dnal_calloc(sizeof *c.used_compact * (size_t)dense->n_tensors);
    for (int i = 0; i < dense->n_layers; i++)
        for (int k = 0; k < dense->layers[i]->n_in; k++)
            c.used[dense->layers[i]->in[k]->id]++;
    if (c.kept[dense->input->id].n == 0)
        dnal_fatal(DNAL_EXIT_USAGE, "compact: no channel of the input is kept");
    int64_t input[4] = {batch, dense->input->c, dense->input->h, dense->input->w};
    c.net = dnal_net_build(dense->ctx, input, compact_layers, &c);
    for (int j = 0; j < c.n_jobs; j++)
        copy_weights(dense, c.net, &c.jobs[j]);
    for (int t = 0; t < dense->n_tensors; t++)
        free(c.kept[t].idx);
    free(c.kept);
    free(c.used);
    free(c.used_compact);
    free(c.map);
    free(c.jobs);
    return c.net;
}
