/* Latency on this CPU (docs/design.md, "Latency"): the time of a network's
 * whole step, and the latency table of a model (dnal profile).
 *
 * The table times every layer of the dense network alone (src/net/profile.c)
 * at its channel counts in steps of the layout's channel block, from one
 * block to dense: a conv against its output channels (input dense) and,
 * where its input can shrink, against its input channels (output dense);
 * a layer that keeps channels (BN with its ReLU, pooling, a depthwise conv,
 * an add) against its channels. Only counts that gates can change are
 * varied (liveness with every gate closed tells which). Layers of equal
 * shape (a ResNet's repeated blocks) are timed once. The dense network's
 * whole step is timed too: the table predicts a network's step as its
 * layers plus what the layers alone miss (src/net/latency.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "dnal/search.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double dnal_time_steps(dnal_net *net, int infer, int steps)
{
    DNAL_ASSERT(steps >= 1);
    /* the weights and BN statistics come back as they were */
    float *param = dnal_alloc(sizeof(float) * (net->n_param + 1));
    float *stats = dnal_alloc(sizeof(float) * (net->n_stats + 1));
    memcpy(param, net->param, sizeof(float) * net->n_param);
    memcpy(stats, net->stats, sizeof(float) * net->n_stats);
    dnal_sgd opt;
    dnal_sgd_init(&opt, net->n_param, 0.9, 0);
    dnal_pass p = {.training = !infer, .gate_mode = DNAL_GATE_OFF, .beta = 1};
    double *ms = dnal_alloc(sizeof *ms * (size_t)steps);
    for (int s = -1; s < steps; s++) { /* one warm-up */
        double t0 = omp_get_wtime();
        dnal_net_forward(net, &p);
        if (!infer) {
            dnal_net_backward(net, &p, NULL, NULL);
            dnal_update_weights(net, &opt, 1e-6, 0.0);
        }
        if (s >= 0)
            ms[s] = (omp_get_wtime() - t0) * 1e3;
    }
    qsort(ms, (size_t)steps, sizeof *ms, cmp_double);
    double median = steps % 2 ? ms[steps / 2] : 0.5 * (ms[steps / 2 - 1] + ms[steps / 2]);
    memcpy(net->param, param, sizeof(float) * net->n_param);
    memcpy(net->stats, stats, sizeof(float) * net->n_stats);
    dnal_sgd_free(&opt);
    dnal_free(param);
    dnal_free(stats);
    dnal_free(ms);
    return median;
}

/* ---- the table ---- */

typedef struct memo_entry {
    dnal_layer_signature sig;
    double ms[2];
} memo_entry;

typedef struct profiler {
    dnal_net *net;     /* dense, at the training batch */
    const dnal_dist *dist; /* ranks measuring side by side (NULL: one process) */
    int64_t batch;
    int reps;
    memo_entry *memo;
    int n_memo, cap_memo;
    int64_t timed;     /* signatures timed (the others came from the memo) */
} profiler;

static void time_point(profiler *p, int layer, int64_t cin, int64_t cout, int scatter,
                       double ms[2])
{
    dnal_layer_signature s;
    dnal_net_layer_signature(p->net, layer, cin, cout, &s);
    s.scatter = scatter;
    for (int i = 0; i < p->n_memo; i++)
        if (!memcmp(&p->memo[i].sig, &s, sizeof s)) {
            ms[0] = p->memo[i].ms[0];
            ms[1] = p->memo[i].ms[1];
            return;
        }
    for (int w = 0; w < 2; w++) {
        double together = 0; /* the ranks start each point at once, as in a run */
        if (p->dist)
            dnal_dist_sum(p->dist, &together, 1);
        ms[w] = dnal_net_time_signature(p->net, &s, w == DNAL_LATENCY_INFER, p->batch, p->reps);
    }
    if (p->n_memo == p->cap_memo) {
        p->cap_memo = p->cap_memo ? 2 * p->cap_memo : 64;
        p->memo = dnal_realloc(p->memo, sizeof *p->memo * (size_t)p->cap_memo);
    }
    p->memo[p->n_memo++] = (memo_entry){s, {ms[0], ms[1]}};
    p->timed++;
}

/* the counts of a curve: one block to `dense` in steps of the block, or
 * dense alone where the count never changes */
static void curve_points(dnal_latency_curve *c, int64_t dense, int64_t block, int varies)
{
    int n = varies ? (int)((dense + block - 1) / block) : 1;
    dnal_latency_curve_alloc(c, n);
    for (int k = 0; k < n; k++)
        c->channels[k] = k == n - 1 ? dense : (int64_t)(k + 1) * block;
}

/* tensors whose count a gate can lower: fewer live channels than the
 * tensor has with every gate closed */
static char *varying_tensors(const dnal_net *net)
{
    float *closed = dnal_calloc(sizeof(float) * (net->n_gates + 1));
    char *varies = dnal_calloc((size_t)net->n_tensors + 1);
    dnal_net_cost(net, closed);
    for (int t = 0; t < net->n_tensors; t++) {
        const float *live = dnal_net_liveness(net, net->tensors[t]);
        for (int64_t c = 0; c < net->tensors[t]->c && !varies[t]; c++)
            varies[t] = live[c] < 1.0f;
    }
    dnal_free(closed);
    return varies;
}

static void profile_layer(profiler *p, dnal_latency_layer *e, int i, int64_t block,
                          const char *varies)
{
    const dnal_net *net = p->net;
    const dnal_layer *l = net->layers[i];
    int64_t cin = l->in[0]->c, cout = l->out ? l->out->c : cin;
    int dense_conv = l->kind == DNAL_CONV && !dnal_layer_is_depthwise(l);
    snprintf(e->name, sizeof e->name, "%s", l->name);
    e->kind = (int)l->kind;
    e->in_channels = cin;
    e->out_channels = cout;
    double ms[2];
    if (l->kind == DNAL_LINEAR) { /* against its input channels */
        curve_points(&e->out, cin, block, varies[l->in[0]->id]);
        for (int k = 0; k < e->out.n; k++) {
            time_point(p, i, e->out.channels[k], cout, 0, ms);
            e->out.ms[0][k] = ms[0], e->out.ms[1][k] = ms[1];
        }
        return;
    }
    int out_varies = l->out ? varies[l->out->id] : 0;
    curve_points(&e->out, cout, block, out_varies);
    for (int k = 0; k < e->out.n; k++) {
        int64_t c = e->out.channels[k];
        /* a layer keeping channels has as many in as out; the padded
         * shortcut keeps its in/out ratio */
        int64_t ci = dense_conv ? cin
                     : l->kind == DNAL_SCATTER_ADD ? (c * cin + cout - 1) / cout
                                                   : c;
        time_point(p, i, ci, c, 0, ms);
        e->out.ms[0][k] = ms[0], e->out.ms[1][k] = ms[1];
    }
    for (int form = 1; form <= 2 && l->kind == DNAL_ADD && out_varies; form++) {
        dnal_latency_curve *c = form == 1 ? &e->scatter : &e->widen; /* a compact network's */
        curve_points(c, cout, block, 1);
        for (int k = 0; k < c->n; k++) {
            time_point(p, i, c->channels[k], c->channels[k], form, ms);
            c->ms[0][k] = ms[0], c->ms[1][k] = ms[1];
        }
    }
    if (dense_conv && varies[l->in[0]->id]) {
        curve_points(&e->in, cin, block, 1);
        for (int k = 0; k < e->in.n; k++) {
            time_point(p, i, e->in.channels[k], cout, 0, ms);
            e->in.ms[0][k] = ms[0], e->in.ms[1][k] = ms[1];
        }
    }
}

/* each layer's time inside the network: the median over `reps` steps
 * after a warm-up (train: forward and backward; infer: forward), into ms */
static void context_times(dnal_net *net, int infer, int reps, double *ms)
{
    size_t n = (size_t)net->n_layers;
    double *all = dnal_alloc(sizeof *all * n * (size_t)reps);
    dnal_pass p = {.training = !infer, .gate_mode = DNAL_GATE_OFF, .beta = 1};
    net->profile = 1;
    for (int r = -1; r < reps; r++) {
        memset(net->fwd_time, 0, sizeof *net->fwd_time * n);
        memset(net->bwd_time, 0, sizeof *net->bwd_time * n);
        dnal_net_forward(net, &p);
        if (!infer)
            dnal_net_backward(net, &p, NULL, NULL);
        for (size_t i = 0; r >= 0 && i < n; i++)
            all[i * (size_t)reps + (size_t)r] = (net->fwd_time[i] + net->bwd_time[i]) * 1e3;
    }
    net->profile = 0;
    for (size_t i = 0; i < n; i++) {
        double *v = all + i * (size_t)reps;
        qsort(v, (size_t)reps, sizeof *v, cmp_double);
        ms[i] = reps % 2 ? v[reps / 2] : 0.5 * (v[reps / 2 - 1] + v[reps / 2]);
    }
    dnal_free(all);
}

/* scaled by f, and never rising as channels fall: a layer computes no
 * more for fewer channels, so a time above a larger count's is noise (a
 * busy machine only ever adds time: the smaller is kept); a predicted time
 * that never falls as gates open lets the fit at prune bisect */
static void scale_curve(dnal_latency_curve *c, int which, double f)
{
    for (int k = c->n - 1; k >= 0; k--) {
        c->ms[which][k] *= f;
        if (k < c->n - 1 && c->ms[which][k] > c->ms[which][k + 1])
            c->ms[which][k] = c->ms[which][k + 1];
    }
}

/* Timed alone a layer finds its input and weights in the cache, and a small
 * one runs faster than inside the network, where the layers around it
 * evict them (measured: a BN of resnet20's first stage 2.7x, a conv 1.2x):
 * each layer's curves are scaled by its time inside the dense network over
 * its time alone at dense. */
static void calibrate(dnal_latency *tab, const dnal_net *net, const double *ctx, int which)
{
    for (int i = 0; i < net->n_layers; i++) {
        if (tab->of_layer[i] < 0)
            continue;
        dnal_latency_layer *e = &tab->layers[tab->of_layer[i]];
        double alone = e->out.ms[which][e->out.n - 1];
        double f = alone > 0 && ctx[i] > 0 ? ctx[i] / alone : 1.0;
        e->context[which] = f;
        scale_curve(&e->out, which, f);
        scale_curve(&e->in, which, f);
        scale_curve(&e->scatter, which, f);
        scale_curve(&e->widen, which, f);
        tab->layers_ms[which] += e->out.ms[which][e->out.n - 1];
    }
}

dnal_latency *dnal_profile(const dnal_ctx *ctx, const dnal_model_cfg *m, uint64_t seed,
                           int reps, const dnal_dist *dist, FILE *progress)
{
    dnal_net *net = dnal_model_build(ctx, m);
    dnal_model_init(net, seed);
    int32_t *labels = dnal_calloc(sizeof *labels * (size_t)(m->batch + 1));
    dnal_net_set_labels(net, labels);
    int n = 0;
    for (int i = 0; i < net->n_layers; i++)
        n += dnal_net_profiled_layer(net, i);
    dnal_latency *tab = dnal_latency_new(n);
    snprintf(tab->model, sizeof tab->model, "%s", m->name);
    tab->in_channels = m->in_channels;
    tab->image_size = m->image_size;
    tab->classes = m->classes;
    tab->width = m->width;
    tab->batch = m->batch;
    tab->threads = omp_get_max_threads();
    tab->block = dnal_net_channel_block(net);
    snprintf(tab->isa, sizeof tab->isa, "%s", dnal_isa_name());
    dnal_md_layout_str(&net->layout, tab->layout, sizeof tab->layout);
    snprintf(tab->dtype, sizeof tab->dtype, "%s", dnal_md_is_bf16(&net->layout) ? "bf16" : "f32");

    profiler p = {.net = net, .dist = dist, .batch = m->batch, .reps = reps};
    char *varies = varying_tensors(net);
    for (int i = 0, e = 0; i < net->n_layers; i++) {
        if (!dnal_net_profiled_layer(net, i))
            continue;
        dnal_latency_layer *entry = &tab->layers[e++];
        profile_layer(&p, entry, i, tab->block, varies);
        if (progress) {
            fprintf(progress, "profile_layer name=%s kind=%s channels=%lld..%lld points=%d "
                    "alone_train_ms=%.3f alone_infer_ms=%.4f\n", entry->name,
                    dnal_layer_kind_name((dnal_layer_kind)entry->kind),
                    (long long)entry->out.channels[0],
                    (long long)entry->out.channels[entry->out.n - 1],
                    entry->out.n + entry->in.n + entry->scatter.n + entry->widen.n,
                    entry->out.ms[0][entry->out.n - 1], entry->out.ms[1][entry->out.n - 1]);
            fflush(progress);
        }
    }
    /* the dense network: its whole step, and each layer inside it */
    dnal_model_cfg one = *m;
    one.batch = 1;
    dnal_net *single = dnal_model_build(ctx, &one);
    dnal_model_init(single, seed);
    dnal_net_set_labels(single, labels);
    double *ctx_ms = dnal_alloc(sizeof *ctx_ms * ((size_t)net->n_layers + 1));
    dnal_latency_bind(tab, net, m->name);
    for (int w = 0; w < 2; w++) {
        dnal_net *n = w == DNAL_LATENCY_TRAIN ? net : single;
        double together = 0;
        if (dist)
            dnal_dist_sum(dist, &together, 1);
        tab->step_ms[w] = dnal_time_steps(n, w == DNAL_LATENCY_INFER, reps);
        context_times(n, w == DNAL_LATENCY_INFER, reps, ctx_ms);
        calibrate(tab, n, ctx_ms, w);
    }
    dnal_free(ctx_ms);
    dnal_net_destroy(single);
    if (progress) {
        fprintf(progress, "profile_step train_ms=%.3f infer_ms=%.4f train_layers_ms=%.3f "
                "infer_layers_ms=%.4f timed=%lld\n", tab->step_ms[0], tab->step_ms[1],
                tab->layers_ms[0], tab->layers_ms[1], (long long)p.timed);
        fflush(progress);
    }
    dnal_free(varies);
    dnal_free(p.memo);
    dnal_free(labels);
    dnal_net_destroy(net);
    return tab;
}
