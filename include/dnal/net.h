/* dnal net: an ordered list of layers over tensors (residual edges are layers
 * with two inputs), built once for a batch size.
 *
 * Storage (docs/design.md, "One training step"): parameters and their gradients each live in
 * one flat float buffer in plain layout, ordered in reverse layer order so
 * that the gradients of the last layers (ready first in backward) form a
 * contiguous prefix; alpha, its gradient and the masks are flat buffers with
 * one entry per gated channel, in layer order; BN running statistics are one
 * flat buffer; activations, their gradients and the layers' private bytes
 * are carved from one arena. Nothing is allocated after dnal_net_finalize. */
#ifndef DNAL_NET_H
#define DNAL_NET_H

#include "dnal/layers.h"

typedef struct dnal_net {
    const dnal_ctx *ctx;
    int n_layers, cap_layers;
    dnal_layer **layers;
    int n_tensors, cap_tensors;
    dnal_tensor **tensors;
    dnal_tensor *input;   /* N x C x H x W, plain NCHW; set input->need_grad
                             before adding layers to get d(input) (tests) */
    dnal_layer *loss;     /* softmax cross-entropy, last layer; NULL: the caller
                             writes d(output) of the last layer before backward */
    int finalized;

    /* The one activation layout kind of every tensor between layers: what
     * each convolution writes (pooling, BN, ReLU, gate, add and scatter-add
     * keep their input's kind). Set before adding layers; dnal_net_create
     * sets ctx->conv_layout, dnal_net_build picks it (layout.c). */
    dnal_md layout;
    int n_reorders;       /* layers reading a reordered copy of a tensor another
                             layer wrote (l->src_reorder; no kernel for its layout) */
    int n_input_reorders; /* the same for tensors read from the network input */
    int n_reference;      /* primitives running oneDNN's reference kernel */

    /* Fusion at finalize (src/net/fuse.c): BN with the gate after it and the
     * ReLU after that, BN with a ReLU, an add with a ReLU run as one layer
     * each. no_fuse (set before finalize) runs every layer on its own. */
    int no_fuse;
    int params_only; /* ctx->params_only (or count_only): no activations, no primitives */
    int count_only;  /* ctx->count_only: no buffers at all, only the counts */
    int n_fused_gates, n_fused_relus; /* gates folded into BN, ReLUs fused */

    size_t n_param, n_gates, n_stats; /* floats in the flat buffers */
    float *param, *grad;
    float *alpha, *alpha_grad, *mask;
    float *stats;
    dnal_arena flat;      /* the flat buffers above and below, carved by offsets */
    dnal_arena acts;      /* activations, gradients, private bytes */
    void *scratch;        /* shared oneDNN scratchpad */
    size_t scratch_bytes;

    /* gradient fan-out: an edge whose tensor already got a gradient from a
     * later consumer writes to a shared buffer, then adds it in */
    dnnl_memory_t *edge_accum; /* [n_layers * 2], NULL: writes the tensor's diff */
    void *accum;

    /* channel liveness, one float per channel of every tensor (cost.c) */
    float *live;
    size_t *live_off;

    /* per-layer wall time in seconds, accumulated while `profile` is set;
     * grad_sum_time: the gradient sums of tensors read by several layers */
    int profile;
    double *fwd_time, *bwd_time, grad_sum_time;
} dnal_net;

dnal_net *dnal_net_create(const dnal_ctx *ctx, int64_t batch, int64_t c, int64_t h, int64_t w);
/* An input in a given layout (2-D or 4-D), e.g. nChw16c to test one layer in
 * the layout it meets inside a network. */
dnal_net *dnal_net_create_md(const dnal_ctx *ctx, const dnal_md *input);
void dnal_net_destroy(dnal_net *net);

/* Adds a network's layers to `net` (and nothing else: it may be called once
 * per layout tried). */
typedef void (*dnal_net_build_fn)(dnal_net *net, void *arg);
/* Builds and finalizes a network over a plain NCHW input (N, C, H, W) in the
 * activation layout that serves it: ctx->conv_layout, or where that leaves a
 * layer with a reference kernel or a reorder between layers, channels last
 * if it has fewer (reference kernels first, then reorders). The last call
 * of fn built the network returned. */
dnal_net *dnal_net_build(const dnal_ctx *ctx, const int64_t input[4], dnal_net_build_fn fn,
                         void *arg);

/* Building: each call appends a layer and returns its output tensor. */
dnal_tensor *dnal_net_conv(dnal_net *net, const char *name, dnal_tensor *in,
                           const dnal_conv_cfg *cfg);
dnal_tensor *dnal_net_bn(dnal_net *net, const char *name, dnal_tensor *in);
dnal_tensor *dnal_net_relu(dnal_net *net, const char *name, dnal_tensor *in, float cap);
dnal_tensor *dnal_net_pool(dnal_net *net, const char *name, dnal_layer_kind kind,
                           dnal_tensor *in, int64_t kernel, int64_t stride, int64_t pad);
dnal_tensor *dnal_net_gap(dnal_net *net, const char *name, dnal_tensor *in);
dnal_tensor *dnal_net_linear(dnal_net *net, const char *name, dnal_tensor *in,
                             int64_t out_features, int bias);
dnal_tensor *dnal_net_sum(dnal_net *net, const char *name, dnal_tensor *a, dnal_tensor *b);
/* The sum that closes a residual block: branch + shortcut (the same layer as
 * dnal_net_sum, marked: layer->residual). */
dnal_tensor *dnal_net_residual(dnal_net *net, const char *name, dnal_tensor *branch,
                               dnal_tensor *shortcut);
dnal_tensor *dnal_net_gate(dnal_net *net, const char *name, dnal_tensor *in);
dnal_tensor *dnal_net_scatter_add(dnal_net *net, const char *name, dnal_tensor *b,
                                  dnal_tensor *base, int64_t out_c, const int64_t *idx);
void dnal_net_softmax_ce(dnal_net *net, const char *name, dnal_tensor *logits);

/* Assigns offsets, fuses (unless no_fuse), allocates every buffer, creates
 * all primitives (a params_only network: the flat buffers only; a
 * count_only network: nothing, only the counts and offsets). BN scales and running variances start at 1, masks at 1,
 * everything else at 0. */
void dnal_net_finalize(dnal_net *net);
/* The fusion step of finalize (fuse.c); called by it, never after it
 * (fusing changes primitives and private storage that bind has used). */
void dnal_net_fuse(dnal_net *net);

/* Called after each layer's backward, in backward order (e.g. to start the
 * allreduce of a gradient bucket). */
typedef void (*dnal_layer_done_fn)(void *arg, const dnal_net *net, int layer);

void dnal_net_forward(dnal_net *net, const dnal_pass *p);
void dnal_net_backward(dnal_net *net, const dnal_pass *p, dnal_layer_done_fn done, void *arg);
void dnal_net_set_labels(dnal_net *net, const int32_t *labels);

/* Cost of the network: multiply-adds of conv and linear layers per sample
 * (the paper's convention: VGG16 on CIFAR-10 = 313.5M) and parameters
 * (conv, linear, BN scale and shift). With gate values g (one per gated
 * channel, as alpha), every channel count is an expected count, on both
 * sides of each conv: the sum over the tensor's channels of their liveness.
 * A gated channel lives with its gate value; layers that keep channels pass
 * liveness on; a sum keeps a channel alive if either input does
 * (1 - (1-a)(1-b)). With 0/1 masks this is exactly the compact network's
 * cost; g NULL: dense. */
typedef struct dnal_cost {
    double flops;
    double params;
} dnal_cost;
dnal_cost dnal_net_cost(const dnal_net *net, const float *g);

/* How channels are counted. EXACT: as above, what the compact network
 * computes. AUTHORS: as the DNAL authors' code counts a masked network
 * (their masks zero a pruned channel's output row and the next masked
 * convolution's input column): a residual sum's channel counts as dead for
 * the layers reading the sum when the branch's last gate removed it, even
 * though the shortcut keeps it alive; a convolution whose output no gate
 * governs (a projection shortcut, a stem) counts its input dense. Equal to
 * EXACT for chains (VGG) and dense networks. */
typedef enum dnal_count { DNAL_COUNT_EXACT = 0, DNAL_COUNT_AUTHORS = 1 } dnal_count;
/* The cost of the gated (dense) network under g in either count (a compact
 * network has no gates: count it with dnal_net_cost). */
dnal_cost dnal_net_cost_as(const dnal_net *net, const float *g, dnal_count count);
/* Channel c of tensor t is alive under masks (after dnal_net_cost with them). */
const float *dnal_net_liveness(const dnal_net *net, const dnal_tensor *t);
/* Gate values of pass p (off: 1; search: sigmoid(beta*alpha)*m; pruned: m) into g. */
void dnal_net_gate_values(const dnal_net *net, const dnal_pass *p, float *g);

/* The compact network of a masked one (masks in net->mask): every tensor
 * keeps only its channels alive under the masks, gates vanish, and a sum of
 * inputs that keep different channels becomes a scatter-add at their
 * indices (a compact residual branch adds its kept channels into the
 * shortcut). Weights, biases, BN parameters and statistics are copied; layer
 * names are kept. Finalized for `batch`. A dead branch (a layer whose output
 * keeps no channel, e.g. a removed supernet candidate) vanishes and a sum
 * with such an input becomes its other input; exits if any other layer reads
 * a tensor that keeps no channel, or a kept tensor feeds only vanished layers. */
dnal_net *dnal_net_compact(dnal_net *dense, int64_t batch);

/* The architecture a search chose: the mask of every gated layer (1 kept,
 * 0 removed), in layer order, with the layer's name and dense channel
 * count. It outlives the dense network: a compact network, its checkpoints
 * and model files carry it. */
typedef struct dnal_arch_record {
    int n;
    char (*name)[64];
    int64_t *channels;   /* dense channels of each gated layer */
    float **mask;
} dnal_arch_record;

/* The record of the masks (net->mask) of every gated layer of `net`. */
void dnal_arch_record_of(dnal_arch_record *rec, const dnal_net *net);
void dnal_arch_record_free(dnal_arch_record *rec);

/* A layer's parameter i (plain layout) and its gradient. */
float *dnal_net_param(const dnal_net *net, const dnal_layer *l, int i);
float *dnal_net_param_grad(const dnal_net *net, const dnal_layer *l, int i);
dnal_layer *dnal_net_find(const dnal_net *net, const char *name);

/* ---- latency (docs/design.md, "Latency"): profile.c times layers alone,
 * latency.c predicts a network's time from a table of such times ---- */

/* The channel block of the network's activation layout (dnal_layout_channel_block),
 * or in channels last the block of the layout oneDNN's convolutions pick
 * here (ctx->conv_layout: its NHWC kernels compute output channels in
 * vectors that wide): prune.channel_multiple=auto rounds kept channels to it. */
int64_t dnal_net_channel_block(const dnal_net *net);

/* What decides a layer's time when timed alone: its kind and geometry, its
 * channel counts, whether it reads the network input, the ReLU fused into
 * it. Equal signatures (memcmp) time the same. */
typedef struct dnal_layer_signature {
    int kind, ndims, depthwise, bias, from_input, n_in, relu;
    int scatter; /* an add as a compact network runs it when its inputs keep different
                    channels: a scatter-add of one into the other, the ReLU apart (1),
                    and first one widened to the sum's channels (2: neither holds all) */
    int64_t cin, cout, h, w, kernel, stride, pad, grouped, out_features;
} dnal_layer_signature;
/* Layer `layer` of net counts in a latency table: it runs (not absorbed by
 * a fused layer) and is no gate (a compact network has none). */
int dnal_net_profiled_layer(const dnal_net *net, int layer);
/* The signature of layer `layer` of net with cin input and cout output
 * channels (cin = cout for layers that keep channels). */
void dnal_net_layer_signature(const dnal_net *net, int layer, int64_t cin, int64_t cout,
                              dnal_layer_signature *s);
/* Milliseconds of a layer of signature s, built alone in net's layout: the
 * median of `reps` runs after one warm-up of forward and backward over a
 * batch of `batch` (train), or of forward at batch 1 (infer). */
double dnal_net_time_signature(const dnal_net *net, const dnal_layer_signature *s, int infer,
                               int64_t batch, int reps);

/* A latency table: each layer's time against its channel counts, measured
 * on one CPU at one thread count (dnal profile). */
enum { DNAL_LATENCY_TRAIN = 0, DNAL_LATENCY_INFER = 1 };
typedef struct dnal_latency_curve {
    int n;                /* points, channels ascending; the last is the dense count */
    int64_t *channels;
    double *ms[2];        /* [DNAL_LATENCY_TRAIN]: forward and backward at the table's
                             batch; [DNAL_LATENCY_INFER]: forward at batch 1 */
} dnal_latency_curve;
typedef struct dnal_latency_layer {
    char name[64];
    int kind;                          /* dnal_layer_kind */
    int64_t in_channels, out_channels; /* in the dense network */
    /* against the output channels with the input dense (a layer keeping
     * channels: both; linear: against its input channels, its outputs are
     * the classes) */
    dnal_latency_curve out;
    /* a dense conv: against the input channels with the output dense
     * (n = 0 where the input never changes, e.g. the network input) */
    dnal_latency_curve in;
    /* an add: its compact forms where its inputs keep different channels
     * (scatter-add and a ReLU apart; widen: and one input widened first,
     * when neither holds every channel of the sum), against its channels;
     * n = 0 otherwise */
    dnal_latency_curve scatter, widen;
    /* the layer's time inside the dense network over its time alone at
     * dense (train, infer): every point above is multiplied by it */
    double context[2];
} dnal_latency_layer;
typedef struct dnal_latency {
    char model[32];
    int64_t in_channels, image_size, classes;
    double width;
    int64_t batch, threads, block; /* the training batch, OpenMP threads, channel step */
    char isa[32], layout[16], dtype[8];
    double step_ms[2];   /* the dense network's whole step, measured (train: forward,
                            backward and update; infer: forward at batch 1) */
    double layers_ms[2]; /* the dense network's layers timed alone, summed */
    int n_layers;
    dnal_latency_layer *layers;
    int *of_layer;       /* dnal_latency_bind: each layer of the bound network's entry, or -1 */
    int n_bound;
} dnal_latency;

/* n_layers entries with curves of the given points (zeroed). */
dnal_latency *dnal_latency_new(int n_layers);
void dnal_latency_curve_alloc(dnal_latency_curve *c, int n);
void dnal_latency_free(dnal_latency *tab);
/* Time of a curve at c channels (fractional: expected counts under gates):
 * linear between the measured counts, the first point's below it (a
 * layout computes at least one block), the last's above. */
double dnal_latency_at(const dnal_latency_curve *c, double channels, int which);
/* Matches the table to a network: every layer that counts
 * (dnal_net_profiled_layer) needs an entry of the same name, kind and
 * dense channels; otherwise exit 2 naming `origin` (the table's file) and
 * the layer. */
void dnal_latency_bind(dnal_latency *tab, const dnal_net *net, const char *origin);
/* The predicted time in ms of one step (which: train or infer) of the
 * network under gate values g (one per gated channel; the masks: its
 * compact network; NULL: the dense network as it is, its measured step):
 * every layer at its expected channel counts
 * (liveness, as dnal_net_cost; a layer left with none vanishes), a conv at
 * out(c_out) in(c_in) / its dense time, an add whose inputs keep different
 * channels in its scatter form, plus the rest of the dense step (update,
 * gradient sums) scaled with the layers. tab bound to net. */
double dnal_latency_predict(const dnal_latency *tab, const dnal_net *net, const float *g,
                            int which);
/* The same with gate layer `gate` at `channels` (its first ones; a
 * fraction opens the next one partly) and every other gate open: the
 * network's time against that gate's channels. scratch: n_gates floats. */
double dnal_latency_gate_time(const dnal_latency *tab, const dnal_net *net, int gate,
                              double channels, int which, float *scratch);

#endif
