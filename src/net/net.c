/* The network container: building, storage layout, forward and backward. */
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "dnal/net.h"

enum { PARAM_ALIGN = 16 }; /* floats: every parameter starts on a cache line */

static dnal_tensor *new_tensor(dnal_net *net)
{
    if (net->n_tensors == net->cap_tensors) {
        net->cap_tensors = net->cap_tensors ? 2 * net->cap_tensors : 64;
        net->tensors = dnal_realloc(net->tensors, sizeof *net->tensors * (size_t)net->cap_tensors);
    }
    dnal_tensor *t = dnal_calloc(sizeof *t);
    t->producer = -1;
    t->gate = -1;
    t->need_grad = 1;
    t->id = net->n_tensors;
    net->tensors[net->n_tensors++] = t;
    return t;
}

/* A gate governs the channels of every tensor between it and the layer that
 * mixes channels before it (a dense conv, whose output channels these are):
 * walking back through BN, ReLU, pooling and depthwise convs. */
static void claim_channels(dnal_net *net, dnal_tensor *t, int gate)
{
    while (t) {
        t->gate = gate;
        if (t->producer < 0)
            return;
        dnal_layer *p = net->layers[t->producer];
        t = dnal_layer_keeps_channels(p) ? p->in[0] : NULL;
    }
}

/* appends a new layer; returns its output tensor */
static dnal_tensor *append(dnal_net *net, dnal_layer *l)
{
    DNAL_ASSERT(!net->finalized && net->loss == NULL);
    if (net->n_layers == net->cap_layers) {
        net->cap_layers = net->cap_layers ? 2 * net->cap_layers : 64;
        net->layers = dnal_realloc(net->layers, sizeof *net->layers * (size_t)net->cap_layers);
    }
    int index = net->n_layers++;
    net->layers[index] = l;
    if (l->src_reorder && l->in[0] == net->input)
        net->n_input_reorders++;
    else if (l->src_reorder)
        net->n_reorders++;
    for (int k = 0; k < l->n_pd; k++)
        net->n_reference += dnal_pd_is_reference(l->pd[k]);
    if (!l->out)
        return NULL;
    l->out->producer = index;
    if (l->kind == DNAL_GATE) {
        l->out->gate = index;
        claim_channels(net, l->in[0], index);
    }
    else if (dnal_layer_keeps_channels(l))
        l->out->gate = l->in[0]->gate;
    return l->out;
}

dnal_net *dnal_net_create_md(const dnal_ctx *ctx, const dnal_md *input)
{
    int64_t dims[4];
    int ndims = dnal_md_dims(input, dims);
    DNAL_ASSERT(ndims == 2 || ndims == 4);
    dnal_net *net = dnal_calloc(sizeof *net);
    net->ctx = ctx;
    net->layout = ctx->conv_layout;
    net->no_fuse = ctx->no_fuse;
    net->params_only = ctx->params_only || ctx->count_only;
    net->count_only = ctx->count_only;
    dnal_tensor *t = net->input = new_tensor(net);
    t->need_grad = 0;
    t->md = *input;
    t->ndims = ndims;
    t->n = dims[0];
    t->c = dims[1];
    t->h = dims[2];
    t->w = dims[3];
    return net;
}

dnal_net *dnal_net_create(const dnal_ctx *ctx, int64_t batch, int64_t c, int64_t h, int64_t w)
{
    int64_t dims[4] = {batch, c, h, w};
    dnal_md md = dnal_md_plain(4, dims);
    return dnal_net_create_md(ctx, &md);
}

dnal_tensor *dnal_net_conv(dnal_net *net, const char *name, dnal_tensor *in,
                           const dnal_conv_cfg *cfg)
{
    return append(net,
                  dnal_conv_create(net->ctx, name, in, new_tensor(net), cfg, &net->layout));
}

dnal_tensor *dnal_net_bn(dnal_net *net, const char *name, dnal_tensor *in)
{
    return append(net, dnal_bn_create(net->ctx, name, in, new_tensor(net)));
}

dnal_tensor *dnal_net_relu(dnal_net *net, const char *name, dnal_tensor *in, float cap)
{
    return append(net, dnal_relu_create(net->ctx, name, in, new_tensor(net), cap));
}

dnal_tensor *dnal_net_pool(dnal_net *net, const char *name, dnal_layer_kind kind,
                           dnal_tensor *in, int64_t kernel, int64_t stride, int64_t pad)
{
    return append(net, dnal_pool_create(net->ctx, name, kind, in, new_tensor(net), kernel, stride,
                                        pad));
}

dnal_tensor *dnal_net_gap(dnal_net *net, const char *name, dnal_tensor *in)
{
    return append(net, dnal_gap_create(net->ctx, name, in, new_tensor(net)));
}

dnal_tensor *dnal_net_linear(dnal_net *net, const char *name, dnal_tensor *in,
                             int64_t out_features, int bias)
{
    return append(net,
                  dnal_linear_create(net->ctx, name, in, new_tensor(net), out_features, bias));
}

dnal_tensor *dnal_net_sum(dnal_net *net, const char *name, dnal_tensor *a, dnal_tensor *b)
{
    return append(net, dnal_add_create(net->ctx, name, a, b, new_tensor(net)));
}

dnal_tensor *dnal_net_gate(dnal_net *net, const char *name, dnal_tensor *in)
{
    return append(net, dnal_gate_create(net->ctx, name, in, new_tensor(net)));
}

dnal_tensor *dnal_net_scatter_add(dnal_net *net, const char *name, dnal_tensor *b,
                                  dnal_tensor *base, int64_t out_c, const int64_t *idx)
{
    return append(net,
                  dnal_scatter_add_create(net->ctx, name, b, base, out_c, idx, new_tensor(net)));
}

void dnal_net_softmax_ce(dnal_net *net, const char *name, dnal_tensor *logits)
{
    dnal_layer *l = dnal_softmax_ce_create(net->ctx, name, logits);
    append(net, l);
    net->loss = l;
}

/* ------------------------------------------------------------- finalize */

static void assign_offsets(dnal_net *net)
{
    /* parameters in reverse layer order: gradient buckets are contiguous */
    size_t off = 0;
    for (int i = net->n_layers - 1; i >= 0; i--) {
        dnal_layer *l = net->layers[i];
        for (int p = 0; p < l->n_params; p++) {
            l->param[p].off = off;
            off += (l->param[p].count + PARAM_ALIGN - 1) / PARAM_ALIGN * PARAM_ALIGN;
        }
    }
    net->n_param = off;
    size_t goff = 0, soff = 0;
    for (int i = 0; i < net->n_layers; i++) {
        dnal_layer *l = net->layers[i];
        l->gate_off = goff;
        goff += l->n_gates;
        l->stats_off = soff;
        soff += l->n_stats;
    }
    net->n_gates = goff;
    net->n_stats = soff;
}

static void set_defaults(dnal_net *net)
{
    for (size_t i = 0; i < net->n_gates; i++)
        net->mask[i] = 1.0f;
    for (int i = 0; i < net->n_layers; i++) {
        dnal_layer *l = net->layers[i];
        if (l->kind != DNAL_BN)
            continue;
        float *scale = net->param + l->param[0].off;
        float *run_var = net->stats + l->stats_off + l->in[0]->c;
        for (int64_t c = 0; c < l->in[0]->c; c++)
            scale[c] = run_var[c] = 1.0f;
    }
}

/* The flat buffers, carved from one zeroed block: parameters, gradients
 * (none in a params_only network: it never runs, and a large model read to
 * be exported needs its parameters once, not twice), alpha, its gradient,
 * masks, BN statistics, the per-layer gradient accumulators and timings,
 * the channel liveness of every tensor. */
static void carve_flat(dnal_net *net)
{
    dnal_arena *a = &net->flat;
    size_t nl = (size_t)net->n_layers, nt = (size_t)net->n_tensors, channels = 0;
    for (size_t t = 0; t < nt; t++)
        channels += (size_t)net->tensors[t]->c;
    size_t off[11] = {
        dnal_arena_reserve(a, sizeof(float) * net->n_param),
        dnal_arena_reserve(a, sizeof(float) * (net->params_only ? 0 : net->n_param)),
        dnal_arena_reserve(a, sizeof(float) * net->n_gates),
        dnal_arena_reserve(a, sizeof(float) * net->n_gates),
        dnal_arena_reserve(a, sizeof(float) * net->n_gates),
        dnal_arena_reserve(a, sizeof(float) * net->n_stats),
        dnal_arena_reserve(a, sizeof *net->edge_accum * 2 * nl),
        dnal_arena_reserve(a, sizeof *net->fwd_time * nl),
        dnal_arena_reserve(a, sizeof *net->bwd_time * nl),
        dnal_arena_reserve(a, sizeof *net->live_off * (nt + 1)),
        dnal_arena_reserve(a, sizeof *net->live * channels)};
    dnal_arena_commit(a);
    net->param = dnal_arena_at(a, off[0]);
    net->grad = net->params_only ? NULL : dnal_arena_at(a, off[1]);
    net->alpha = dnal_arena_at(a, off[2]);
    net->alpha_grad = dnal_arena_at(a, off[3]);
    net->mask = dnal_arena_at(a, off[4]);
    net->stats = dnal_arena_at(a, off[5]);
    net->edge_accum = dnal_arena_at(a, off[6]);
    net->fwd_time = dnal_arena_at(a, off[7]);
    net->bwd_time = dnal_arena_at(a, off[8]);
    net->live_off = dnal_arena_at(a, off[9]);
    net->live = dnal_arena_at(a, off[10]);
    for (size_t t = 0; t < nt; t++)
        net->live_off[t + 1] = net->live_off[t] + (size_t)net->tensors[t]->c;
}

/* a tensor a gate governs (up to the conv that makes it) must feed only
 * the layers leading to that gate, or pruning would change other paths */
static void check_gate_fanout(const dnal_net *net)
{
    int *uses = dnal_calloc(sizeof *uses * (size_t)net->n_tensors);
    for (int i = 0; i < net->n_layers; i++)
        for (int k = 0; k < net->layers[i]->n_in; k++)
            uses[net->layers[i]->in[k]->id]++;
    for (int t = 0; t < net->n_tensors; t++) {
        dnal_tensor *x = net->tensors[t];
        if (x->gate >= 0 && x->producer != x->gate && uses[t] > 1)
            dnal_fatal(DNAL_EXIT_USAGE, "model: the output of %s, governed by gate %s, feeds %d layers",
                       x->producer >= 0 ? net->layers[x->producer]->name : "the input",
                       net->layers[x->gate]->name, uses[t]);
    }
    free(uses);
}

/* activations and gradients: the second arena, a memory object over each
 * tensor, the fan-in accumulators, and every layer's primitives */
static void bind_activations(dnal_net *net)
{
    const dnal_ctx *ctx = net->ctx;
    size_t *data_off = dnal_calloc(sizeof *data_off * (size_t)net->n_tensors);
    size_t *diff_off = dnal_calloc(sizeof *diff_off * (size_t)net->n_tensors);
    size_t *priv_off = dnal_calloc(sizeof *priv_off * ((size_t)net->n_layers + 1));
    int *consumers = dnal_calloc(sizeof *consumers * (size_t)net->n_tensors);
    for (int t = 0; t < net->n_tensors; t++) {
        const dnal_tensor *x = net->tensors[t];
        if (x->alias) /* storage of the fused chain's output */
            continue;
        size_t bytes = dnal_md_bytes(&x->md);
        data_off[t] = dnal_arena_reserve(&net->acts, bytes);
        if (x->need_grad)
            diff_off[t] = dnal_arena_reserve(&net->acts, bytes);
    }
    size_t accum_bytes = 0;
    for (int i = 0; i < net->n_layers; i++) {
        dnal_layer *l = net->layers[i];
        priv_off[i] = dnal_arena_reserve(&net->acts, l->priv_bytes);
        if (l->scratch_bytes > net->scratch_bytes)
            net->scratch_bytes = l->scratch_bytes;
        for (int k = 0; k < l->n_in; k++) {
            size_t b = dnal_md_bytes(&l->in[k]->md);
            accum_bytes = b > accum_bytes ? b : accum_bytes;
        }
    }
    size_t accum_off = dnal_arena_reserve(&net->acts, accum_bytes);
    size_t scratch_off = dnal_arena_reserve(&net->acts, net->scratch_bytes);
    dnal_arena_commit(&net->acts);
    net->accum = dnal_arena_at(&net->acts, accum_off);
    net->scratch = dnal_arena_at(&net->acts, scratch_off);

    for (int t = 0; t < net->n_tensors; t++) {
        dnal_tensor *x = net->tensors[t];
        int s = x->alias ? x->alias->id : t;
        DNAL_ASSERT(!x->alias || (!x->alias->alias && dnal_md_equal(&x->md, &x->alias->md) &&
                                  x->need_grad == x->alias->need_grad));
        x->mem = dnal_memory(ctx, &x->md, dnal_arena_at(&net->acts, data_off[s]));
        if (x->need_grad)
            x->diff = dnal_memory(ctx, &x->md, dnal_arena_at(&net->acts, diff_off[s]));
    }

    /* backward order: the first consumer met writes the tensor's gradient,
     * every later one writes to the accumulator and adds it in */
    for (int i = net->n_layers - 1; i >= 0; i--) {
        dnal_layer *l = net->layers[i];
        for (int k = 0; k < l->n_in && !l->absorbed; k++) {
            dnal_tensor *x = l->in[k];
            int t = x->id;
            if (!x->diff) {
                l->in_diff[k] = NULL;
            } else if (consumers[t]++ == 0) {
                l->in_diff[k] = x->diff;
            } else {
                net->edge_accum[2 * i + k] = dnal_memory(ctx, &x->md, net->accum);
                l->in_diff[k] = net->edge_accum[2 * i + k];
            }
        }
    }
    for (int i = 0; i < net->n_layers; i++) {
        dnal_layer *l = net->layers[i];
        dnal_buffers b = {net->param, net->grad, net->alpha, net->alpha_grad, net->mask,
                          net->stats, dnal_arena_at(&net->acts, priv_off[i]), net->scratch};
        dnal_layer_bind(l, ctx, &b);
    }
    free(data_off);
    free(diff_off);
    free(priv_off);
    free(consumers);
}

void dnal_net_finalize(dnal_net *net)
{
    DNAL_ASSERT(!net->finalized && net->n_layers > 0);
    if (!net->no_fuse)
        dnal_net_fuse(net);
    assign_offsets(net);
    check_gate_fanout(net);
    net->finalized = 1;
    if (net->count_only)
        return;
    carve_flat(net);
    set_defaults(net);
    if (!net->params_only)
        bind_activations(net);
}

/* ------------------------------------------------------------------ run */

void dnal_net_set_labels(dnal_net *net, const int32_t *labels)
{
    DNAL_ASSERT(net->loss != NULL);
    dnal_softmax_ce_set_labels(net->loss, labels);
}

void dnal_net_forward(dnal_net *net, const dnal_pass *p)
{
    DNAL_ASSERT(!net->params_only); /* built to be read and written, not run */
    for (int i = 0; i < net->n_layers; i++) {
        double t0 = net->profile ? omp_get_wtime() : 0;
        dnal_layer_forward(net->layers[i], net->ctx, p);
        if (net->profile) {
            DNNL_CHECK(dnnl_stream_wait(net->ctx->stream));
            net->fwd_time[i] += omp_get_wtime() - t0;
        }
    }
    DNNL_CHECK(dnnl_stream_wait(net->ctx->stream));
}

void dnal_net_backward(dnal_net *net, const dnal_pass *p, dnal_layer_done_fn done, void *arg)
{
    DNAL_ASSERT(!net->params_only);
    for (int i = net->n_layers - 1; i >= 0; i--) {
        dnal_layer *l = net->layers[i];
        double t0 = net->profile ? omp_get_wtime() : 0;
        dnal_layer_backward(l, net->ctx, p);
        DNNL_CHECK(dnnl_stream_wait(net->ctx->stream));
        double t1 = net->profile ? omp_get_wtime() : 0;
        for (int k = 0; k < l->n_in; k++)
            if (net->edge_accum[2 * i + k])
                dnal_tensor_grad_add(l->in[k], net->accum);
        if (net->profile) {
            double t2 = omp_get_wtime();
            net->bwd_time[i] += t1 - t0;
            net->grad_sum_time += t2 - t1;
        }
        if (done)
            done(arg, net, i);
    }
}

/* --------------------------------------------------------------- access */

float *dnal_net_param(const dnal_net *net, const dnal_layer *l, int i)
{
    DNAL_ASSERT(i < l->n_params);
    return net->param + l->param[i].off;
}

float *dnal_net_param_grad(const dnal_net *net, const dnal_layer *l, int i)
{
    DNAL_ASSERT(i < l->n_params && net->grad);
    return net->grad + l->param[i].off;
}

dnal_layer *dnal_net_find(const dnal_net *net, const char *name)
{
    for (int i = 0; i < net->n_layers; i++)
        if (!strcmp(net->layers[i]->name, name))
            return net->layers[i];
    return NULL;
}

void dnal_net_destroy(dnal_net *net)
{
    if (!net)
        return;
    for (int i = 0; i < net->n_layers; i++) {
        dnal_layer_destroy(net->layers[i]);
        for (int k = 0; k < 2 && net->edge_accum; k++)
            if (net->edge_accum[2 * i + k])
                dnnl_memory_destroy(net->edge_accum[2 * i + k]);
    }
    for (int t = 0; t < net->n_tensors; t++) {
        if (net->tensors[t]->mem)
            dnnl_memory_destroy(net->tensors[t]->mem);
        if (net->tensors[t]->diff)
            dnnl_memory_destroy(net->tensors[t]->diff);
        free(net->tensors[t]);
    }
    free(net->layers);
    free(net->tensors);
    dnal_arena_release(&net->flat);
    dnal_arena_release(&net->acts);
    free(net);
}
