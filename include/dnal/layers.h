/* dnal layers: forward and backward of each layer kind over oneDNN primitives.
 *
 * Life of a layer:
 *  1. create: given its input tensor(s), whose layout the producer chose, the
 *     layer creates its primitive descriptors, sets its output tensor's dims
 *     and layout, and declares what storage it needs (parameters, gated
 *     channels, statistics, private bytes, scratchpad).
 *  2. the owner (a dnal_net or a test) assigns offsets into its flat buffers,
 *     creates the tensors' memory objects, sets in_diff[] and calls bind.
 *  3. forward / backward, any number of times, allocating nothing.
 *
 * Activations: every layer reads its input in the layout its producer wrote
 * (no reorder between layers). A convolution writes the layout kind its
 * owner gives it (a network's one activation layout, dnal_net.layout);
 * pooling writes its input's layout kind; BN, ReLU, the gate, add and
 * scatter-add keep their input's layout. A convolution for whose input
 * layout oneDNN has only a reference kernel reads a reordered copy instead
 * and sets src_reorder. Parameters are stored in plain (PyTorch) layout;
 * weights are reordered to a primitive's layout only when that differs. */
#ifndef DNAL_LAYERS_H
#define DNAL_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "dnal/core.h"

/* Gate modes (docs/design.md, "The method"). */
typedef enum dnal_gate_mode {
    DNAL_GATE_OFF = 0,    /* g = 1 (weight pre-training) */
    DNAL_GATE_SEARCH = 1, /* g = sigmoid(beta * alpha) * m */
    DNAL_GATE_PRUNED = 2  /* g = m */
} dnal_gate_mode;

/* sigmoid(beta * alpha), in double for large beta * |alpha|: the one
 * sigmoid of dnal (the gate, the regulariser, pruning, the reports) */
static inline double dnal_gate_sigmoid(double beta, float alpha)
{
    return 1.0 / (1.0 + __builtin_exp(-beta * (double)alpha));
}

/* The gate value g of one channel in a mode. */
static inline float dnal_gate_value(dnal_gate_mode mode, float beta, float alpha, float mask)
{
    switch (mode) {
    case DNAL_GATE_SEARCH: return (float)dnal_gate_sigmoid(beta, alpha) * mask;
    case DNAL_GATE_PRUNED: return mask;
    default: return 1.0f;
    }
}

/* What a pass needs to know beyond the tensors. */
typedef struct dnal_pass {
    int training;              /* BN: batch statistics (and running-average update) */
    dnal_gate_mode gate_mode;
    float beta;
} dnal_pass;

/* An activation and its gradient. 2-D tensors (logits) have h = w = 1. */
typedef struct dnal_tensor {
    int ndims;
    int64_t n, c, h, w;
    dnal_md md;         /* layout chosen by its producer */
    dnnl_memory_t mem;  /* values */
    dnnl_memory_t diff; /* gradient in the same layout; NULL when none is needed */
    int producer;       /* index of the layer writing it in its net; -1: the input */
    int id;             /* its index among the net's tensors */
    int need_grad;      /* its gradient is computed (not for the network input) */
    int gate;           /* index of the gate layer governing its channels; -1: none */
    struct dnal_tensor *alias; /* inside a fused chain (src/net/fuse.c): its storage is
                                  that of the chain's output; NULL: its own */
} dnal_tensor;

typedef enum dnal_layer_kind {
    DNAL_CONV,
    DNAL_BN,
    DNAL_RELU,
    DNAL_RELU6,
    DNAL_MAXPOOL,
    DNAL_AVGPOOL,
    DNAL_GAP,
    DNAL_LINEAR,
    DNAL_ADD,
    DNAL_GATE,
    DNAL_SOFTMAX_CE,
    DNAL_SCATTER_ADD,
    DNAL_LAYER_KINDS
} dnal_layer_kind;

const char *dnal_layer_kind_name(dnal_layer_kind k);

/* A parameter tensor of a layer, stored plain in the owner's flat buffers. */
typedef enum dnal_param_role {
    DNAL_PARAM_WEIGHT, /* conv / linear weight: weight decay applies */
    DNAL_PARAM_BIAS,   /* conv / linear bias: weight decay applies (as in PyTorch) */
    DNAL_PARAM_NORM    /* BN scale and shift: no weight decay */
} dnal_param_role;

typedef struct dnal_param {
    const char *name;  /* "weight", "bias", "scale", "shift" */
    dnal_param_role role;
    int ndims;
    int64_t dims[5];   /* PyTorch shape */
    size_t count;      /* elements */
    size_t off;        /* element offset in the owner's param and grad buffers */
} dnal_param;

/* Where a layer's storage lives; handed over by the owner to bind. */
typedef struct dnal_buffers {
    float *param, *grad;               /* flat parameters and their gradients */
    float *alpha, *alpha_grad, *mask;  /* one entry per gated channel */
    float *stats;                      /* running statistics */
    char *priv;                        /* this layer's private bytes */
    void *scratch;                     /* shared scratchpad, >= every layer's scratch_bytes */
} dnal_buffers;

typedef struct dnal_layer dnal_layer;

typedef struct dnal_layer_ops {
    void (*bind)(dnal_layer *l, const dnal_ctx *ctx, const dnal_buffers *b);
    void (*forward)(dnal_layer *l, const dnal_ctx *ctx, const dnal_pass *p);
    void (*backward)(dnal_layer *l, const dnal_ctx *ctx, const dnal_pass *p);
    void (*destroy)(dnal_layer *l);
} dnal_layer_ops;

/* The part every layer kind shares; each kind's own struct starts with it. */
struct dnal_layer {
    const dnal_layer_ops *ops;
    dnal_layer_kind kind;
    char name[64];

    int n_in;
    dnal_tensor *in[2];
    dnnl_memory_t in_diff[2]; /* set by the owner: where backward writes d(in[i]); NULL: skip */
    dnal_tensor *out;         /* NULL for the loss */

    /* storage declared at create; offsets are filled in by the owner */
    int n_params;
    dnal_param param[2];
    size_t n_gates, gate_off;   /* gated channels (gate layer) */
    size_t n_stats, stats_off;  /* running statistics (BN) */
    size_t priv_bytes, priv_off;
    size_t scratch_bytes;

    int frozen;                 /* skip parameter gradients (search stage) */
    int absorbed;               /* an earlier layer does its work (src/net/fuse.c):
                                   it is neither bound nor run */
    int src_reorder;            /* the forward reads a reordered copy of in[0]: oneDNN
                                   has only a reference kernel for its layout (conv) */
    dnal_pd fwd_pd;             /* the forward primitive's descriptor (not owned);
                                   NULL for layers dnal computes itself */
    int n_pd;
    dnal_pd pd[4];              /* every oneDNN primitive of the layer (not owned) */

    /* geometry, for counting FLOPs */
    int64_t kernel, stride, pad, groups;

    /* removable branches (gate layers; set by a model builder, 0: none):
     * the gates of one branch (a supernet candidate) share branch > 0, and
     * pruning removes the branch when the gate nearest its output closes
     * every channel; branch_set > 0 names a set of branches (an edge
     * without shortcut) of which pruning keeps at least one */
    int branch, branch_set;

    /* an add that closes a residual block (set by dnal_net_residual): in[0]
     * is the branch, in[1] the shortcut; the authors' FLOPs count (cost.c)
     * sees only the branch's channels in the sum */
    int residual;
};

/* Configuration of a convolution. */
typedef struct dnal_conv_cfg {
    int64_t out_c, kernel, stride, pad, groups; /* groups 1: dense; = in_c: depthwise */
    int bias;
} dnal_conv_cfg;

/* The output is written in the layout kind `layout` (dnal_md_like), the
 * input read in its own layout where oneDNN has a kernel for it. */
dnal_layer *dnal_conv_create(const dnal_ctx *ctx, const char *name, dnal_tensor *in,
                             dnal_tensor *out, const dnal_conv_cfg *cfg, const dnal_md *layout);
/* Batch normalisation: eps 1e-5, running-average momentum 0.1 (PyTorch's). */
dnal_layer *dnal_bn_create(const dnal_ctx *ctx, const char *name, dnal_tensor *in,
                           dnal_tensor *out);
/* cap 0: ReLU; cap 6: ReLU6 */
dnal_layer *dnal_relu_create(const dnal_ctx *ctx, const char *name, dnal_tensor *in,
                             dnal_tensor *out, float cap);
/* Max or average pooling (average counts padding, as PyTorch's default). */
dnal_layer *dnal_pool_create(const dnal_ctx *ctx, const char *name, dnal_layer_kind kind,
                             dnal_tensor *in, dnal_tensor *out, int64_t kernel,
                             int64_t stride, int64_t pad);
/* Global average pooling: N x C x H x W -> N x C x 1 x 1 */
dnal_layer *dnal_gap_create(const dnal_ctx *ctx, const char *name, dnal_tensor *in,
                            dnal_tensor *out);
/* Fully connected: the input is flattened in NCHW order, as torch.flatten. */
dnal_layer *dnal_linear_create(const dnal_ctx *ctx, const char *name, dnal_tensor *in,
                               dnal_tensor *out, int64_t out_features, int bias);
/* out = a + b (a and b in the same layout) */
dnal_layer *dnal_add_create(const dnal_ctx *ctx, const char *name, dnal_tensor *a,
                            dnal_tensor *b, dnal_tensor *out);
/* out = base + b placed at channels idx: out[:, idx[k]] += b[:, k]; base
 * NULL: zeros, out_c channels in b's layout kind. Used for the zero-padded
 * (option A) ResNet shortcut and for compact residual blocks, whose branch
 * computes only the kept channels. idx is copied. */
dnal_layer *dnal_scatter_add_create(const dnal_ctx *ctx, const char *name, dnal_tensor *b,
                                    dnal_tensor *base, int64_t out_c, const int64_t *idx,
                                    dnal_tensor *out);
/* The channel indices of a scatter-add layer (b's channel k goes to idx[k]). */
const int64_t *dnal_scatter_add_indices(const dnal_layer *l);
/* The DNAL gate: y[n,c,h,w] = x[n,c,h,w] * g_c */
dnal_layer *dnal_gate_create(const dnal_ctx *ctx, const char *name, dnal_tensor *in,
                             dnal_tensor *out);
/* Softmax cross-entropy over logits N x K, mean over the batch. */
dnal_layer *dnal_softmax_ce_create(const dnal_ctx *ctx, const char *name, dnal_tensor *logits);

/* Fusion (src/net/fuse.c picks the chains, before bind). The BN runs the
 * gate layer `gate` folded into its scale and shift (NULL: none), and with
 * relu a ReLU on its output where oneDNN has a fast kernel for it (or dnal's
 * own BN kernel runs); returns whether the ReLU is fused. The BN then writes
 * the chain's output: the owner aliases the tensors in between. */
int dnal_bn_fuse(dnal_layer *bn, const dnal_ctx *ctx, const dnal_layer *gate, int relu);
/* The add writes max(a + b, 0); 0 (nothing changed) where oneDNN has no
 * fast kernel for the ReLU post-op. */
int dnal_add_fuse_relu(dnal_layer *add, const dnal_ctx *ctx);

void dnal_layer_bind(dnal_layer *l, const dnal_ctx *ctx, const dnal_buffers *b);
void dnal_layer_forward(dnal_layer *l, const dnal_ctx *ctx, const dnal_pass *p);
void dnal_layer_backward(dnal_layer *l, const dnal_ctx *ctx, const dnal_pass *p);
void dnal_layer_destroy(dnal_layer *l);

/* A depthwise convolution: groups > 1, each output channel reads one input
 * channel (weight shape O x 1 x k x k). */
int dnal_layer_is_depthwise(const dnal_layer *l);
/* Output channel c depends on input channel c alone, one to one: BN, ReLU,
 * ReLU6, pooling, a depthwise conv with as many outputs as inputs (the
 * gate too, but a gate governs its channels: nets treat it apart). The one
 * list of these kinds: gate governance, liveness and FLOPs walk it. */
int dnal_layer_keeps_channels(const dnal_layer *l);
/* The implementation of each oneDNN primitive of the layer (e.g. "jit:avx2"). */
int dnal_layer_impls(const dnal_layer *l, const char **impl, int max);
/* The layout the layer's forward reads its input k in (for the no-reorder check). */
dnal_md dnal_layer_src_md(const dnal_layer *l, int k);

/* Softmax cross-entropy: labels for the next forward (N entries, 0..K-1). */
void dnal_softmax_ce_set_labels(dnal_layer *l, const int32_t *labels);
/* Only the first `rows` samples count in the loss and hits (a last, partial
 * evaluation batch); the gradient always covers the full batch. */
void dnal_softmax_ce_set_rows(dnal_layer *l, int64_t rows);
typedef struct dnal_ce_result {
    double loss;        /* mean over the counted rows */
    int64_t correct1;   /* top-1 hits */
    int64_t correct5;   /* top-5 hits */
} dnal_ce_result;
dnal_ce_result dnal_softmax_ce_result(const dnal_layer *l);

/* Plain NCHW <-> tensor layout copies (tests and network boundaries; these
 * create a reorder primitive per call, so keep them out of the step loop). */
void dnal_tensor_write(const dnal_ctx *ctx, dnal_tensor *t, int diff, const float *nchw);
void dnal_tensor_read(const dnal_ctx *ctx, const dnal_tensor *t, int diff, float *nchw);
size_t dnal_tensor_count(const dnal_tensor *t);
/* d(t) += src, src a buffer in t's layout and type (gradient fan-out sums) */
void dnal_tensor_grad_add(const dnal_tensor *t, const void *src);
/* Raw pointers behind a tensor's memory objects (f32 or bf16 elements:
 * the tensor's md says which). */
float *dnal_tensor_data(const dnal_tensor *t);
float *dnal_tensor_grad(const dnal_tensor *t);

#endif
