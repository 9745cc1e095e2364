/* Helpers shared by the layer implementations (not installed). */
#ifndef DNAL_LAYERS_INTERNAL_H
#define DNAL_LAYERS_INTERNAL_H

#include "dnal/layers.h"

/* A primitive with its execution arguments, prepared once at bind. */
enum { EXEC_MAX_ARGS = 12 };
typedef struct exec_t {
    dnnl_primitive_t prim;
    dnnl_memory_t scratch; /* over the shared scratchpad */
    int nargs;
    dnnl_exec_arg_t args[EXEC_MAX_ARGS];
} exec_t;

void exec_init(exec_t *e, const dnal_ctx *ctx, dnal_pd pd, void *scratch);
void exec_arg(exec_t *e, int arg, dnnl_memory_t mem);
void exec_run(const exec_t *e, const dnal_ctx *ctx);
void exec_free(exec_t *e);

/* A memory in one layout used by a primitive in the layout it picked: where
 * the two differ, a private copy and one reorder (into the copy before the
 * primitive reads it, or out of it after the primitive wrote it); where they
 * agree, the primitive uses the memory itself. */
typedef struct view_t {
    dnal_md have, want;
    int copy;            /* the layouts differ */
    size_t off;          /* the copy, in the layer's private bytes */
    dnnl_memory_t mem;   /* what the primitive uses */
    dnnl_memory_t own;   /* the copy's memory object (NULL without a copy) */
    exec_t reorder;
} view_t;

/* Reserves private bytes for the copy when needed. */
void view_plan(view_t *v, const dnal_md *have, const dnal_md *want, dnal_layer *l);
/* into_primitive 1: `have_mem` is reordered into the copy (an input);
 * 0: the copy is reordered into `have_mem` (an output). */
void view_bind(view_t *v, const dnal_ctx *ctx, dnnl_memory_t have_mem, char *priv, void *scratch,
               int into_primitive);
void view_sync(const view_t *v, const dnal_ctx *ctx);
void view_free(view_t *v);

/* Convolution and inner product: plain weights (and optional bias) in the
 * flat buffer, three primitives; weighted.c runs both kinds. */
typedef struct weighted_layer {
    dnal_layer base;
    dnal_pd fwd_pd, bwd_data_pd, bwd_wei_pd;
    dnnl_memory_t wei, dwei_plain; /* over the flat parameter and gradient buffers */
    dnnl_memory_t bias, dbias;
    /* every operand whose layout a primitive picked (oneDNN 2.6 has only
     * reference kernels for some shapes in the blocked layouts, e.g. a plain
     * 1-channel source, 3x3 convs on 2x2 maps, some odd widths; there the
     * primitive takes other layouts and gets reordered copies) */
    view_t src;        /* forward's source (the producer's layout, except at the input) */
    view_t wei_fwd;    /* plain weights in forward's layout */
    view_t wei_bwd;    /* ... in backward-data's layout (unused when it equals forward's) */
    int bwd_shares_fwd;
    view_t ddst_data;  /* d(dst) as backward-data reads it */
    view_t dsrc;       /* d(src) as backward-data writes it */
    view_t wsrc;       /* forward's source as backward-weights reads it */
    view_t ddst_wei;   /* d(dst) as backward-weights reads it */
    view_t dwei;       /* weight gradient as backward-weights writes it */
    exec_t fwd, bwd_data, bwd_wei;
} weighted_layer;

weighted_layer *weighted_alloc(dnal_layer_kind kind, const char *name, dnal_tensor *in,
                               dnal_tensor *out);
/* After the three descriptors are set: output tensor, weight views, source
 * reorder (if the forward picked another source layout), scratch. */
void weighted_finish(weighted_layer *c, const dnal_md *wplain);

/* Batch normalisation over dense channels-last data, dnal's own kernel
 * (bn_last.c) for where oneDNN 2.6 has only its generic C++ one. */
typedef struct bn_last {
    int64_t pixels, c, w; /* N*H*W, channels, elements in a row of pixels */
    int nthreads;         /* rows of partial sums */
    size_t off;           /* its storage in the layer's private bytes */
    double *part;         /* nthreads x 2w partial sums */
    double *su, *suv;     /* per channel: sum u, sum u v */
    float *a, *b, *d;     /* per row position: out = u a + v d + b */
    int bf16;             /* the data are bf16 */
    float *stage;         /* bf16: 4 rows per thread, the f32 copies of u, v, y, out */
} bn_last;

/* Reserves the kernel's storage in the layer's private bytes. */
void bn_last_plan(bn_last *k, dnal_layer *l, int64_t pixels, int64_t c, int bf16);
void bn_last_bind(bn_last *k, char *priv);
/* y = BN(x) (relu: max(BN(x), 0)); training: with the batch's mean and
 * biased variance, written to mean and var; else with the given ones */
void bn_last_forward(const bn_last *k, int training, int relu, const void *x, void *y,
                     const float *scale, const float *shift, float *mean, float *var, float eps);
/* dx, dscale, dshift after a training forward (its mean and var); relu_y:
 * the output of a forward with a fused ReLU (dy counts where it is > 0),
 * NULL without */
void bn_last_backward(const bn_last *k, const void *x, const void *relu_y, const void *dy,
                      void *dx, const float *scale, const float *mean, const float *var,
                      float *dscale, float *dshift, float eps);

/* ReLU, ReLU6 and pooling: one forward and one backward primitive (pair.c).
 * new: the layer; finish: its two descriptors (owned), the output tensor,
 * the workspace. */
dnal_layer *pair_layer_new(dnal_layer_kind kind, const char *name, dnal_tensor *in,
                           dnal_tensor *out, int bwd_reads_src);
void pair_layer_finish(dnal_layer *l, dnal_pd fwd, dnal_pd bwd);

/* A new layer of `bytes` (its kind's struct, which starts with dnal_layer),
 * zeroed, its shared part filled: reading a (and b, if not NULL), writing
 * out (NULL for the loss). */
void *layer_new(size_t bytes, const dnal_layer_ops *ops, dnal_layer_kind kind, const char *name,
                dnal_tensor *a, dnal_tensor *b, dnal_tensor *out);
/* Declares a parameter of the layer (plain PyTorch shape). */
void layer_param(dnal_layer *l, const char *name, dnal_param_role role, int ndims,
                 const int64_t *dims);
/* Sets an output tensor's dims from a memory descriptor. */
void tensor_set(dnal_tensor *t, const dnal_md *md);
/* Reserves aligned private bytes; returns their offset inside the layer's private region. */
size_t layer_priv(dnal_layer *l, size_t bytes);
/* Registers one of the layer's primitive descriptors (scratchpad size, introspection). */
void layer_pd(dnal_layer *l, dnal_pd pd);
/* the layer's parameter i inside the flat buffer */
static inline float *param_ptr(const dnal_layer *l, const dnal_buffers *b, int i)
{
    return b->param + l->param[i].off;
}
static inline float *grad_ptr(const dnal_layer *l, const dnal_buffers *b, int i)
{
    return b->grad + l->param[i].off;
}
void *mem_ptr(dnnl_memory_t m);

/* The gate's arithmetic (gate.c), shared with a BN that folds a gate in:
 * s = sigmoid(beta * alpha) and g (dnal_gate_value) of channels [0, c). */
void gate_eval(const dnal_pass *p, const float *alpha, const float *mask, int64_t c, float *s,
               float *g);
/* dL/dalpha of a channel from sum over its pixels of dy * x (dy: the
 * gradient of the gate's output, x: its input); 0 outside search mode. */
static inline float gate_dalpha(const dnal_pass *p, float s, float mask, double sum)
{
    if (p->gate_mode != DNAL_GATE_SEARCH)
        return 0.0f;
    return (float)(p->beta * (double)s * (1.0 - (double)s) * mask * sum);
}
/* bf16 is the upper half of an f32: widening is exact; narrowing rounds to
 * nearest even, as oneDNN's reorders and vcvtneps2bf16 do (a NaN stays a
 * NaN). dnal's own kernels (gate, scatter-add, the fused add-ReLU backward,
 * channels-last BN, gradient sums) compute in f32 and load and store bf16
 * activations through these. */
static inline float bf16_to_f32(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    __builtin_memcpy(&f, &u, sizeof f);
    return f;
}
static inline uint16_t f32_to_bf16(float f)
{
    uint32_t u;
    __builtin_memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
/* n bf16 elements widened into an f32 row, and an f32 row rounded back */
static inline void row_load(float *restrict f, const uint16_t *restrict b, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        f[i] = bf16_to_f32(b[i]);
}
static inline void row_store(uint16_t *restrict b, const float *restrict f, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        b[i] = f32_to_bf16(f[i]);
}
/* bytes of one element of md's type (f32 or bf16) */
static inline size_t elt_bytes(const dnal_md *md)
{
    return dnal_md_is_bf16(md) ? 2 : 4;
}

/* memcpy / memset over all threads (activations are megabytes) */
void copy_parallel(void *dst, const void *src, size_t bytes);
void zero_parallel(void *dst, size_t bytes);

#endif
