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

/* A weight kept plain in the flat buffer and used by a primitive in the
 * layout it picked: a reorder only where the two differ. */
typedef struct weight_view {
    dnal_md plain, prim;
    size_t priv_off;       /* the primitive-layout copy in the layer's private bytes */
    dnnl_memory_t plain_mem, prim_mem; /* prim_mem is plain_mem when layouts agree */
    exec_t reorder;        /* reorder.prim NULL when layouts agree */
} weight_view;

/* Reserves private bytes for the primitive-layout copy when needed. */
void wview_plan(weight_view *w, const dnal_md *plain, const dnal_md *prim, size_t *priv_bytes);
/* to_prim 1: reorder plain -> primitive layout (weights); 0: back (weight gradients). */
void wview_bind(weight_view *w, const dnal_ctx *ctx, float *plain, char *priv, void *scratch,
                int to_prim);
void wview_sync(const weight_view *w, const dnal_ctx *ctx);
void wview_free(weight_view *w);

/* Convolution and inner product: plain weights (and optional bias) in the
 * flat buffer, three primitives; weighted.c runs both kinds. */
typedef struct weighted_layer {
    dnal_layer base;
    dnal_pd fwd_pd, bwd_data_pd, bwd_wei_pd;
    /* the primitive's source layout, when it differs from the producer's
     * (in practice only at the network input): reorders of src and d(src) */
    int src_reorder;
    dnal_md src_md;
    size_t src_off, dsrc_off;
    dnnl_memory_t src_mem, dsrc_mem;
    exec_t to_src, from_dsrc;
    /* backward-weights may read other layouts than forward: oneDNN 2.6 has
     * only reference kernels for some shapes in the blocked layouts (a plain
     * 1-channel source; 3x3 convs on 2x2 maps), where a JIT or GEMM kernel
     * takes another layout; those layers reorder src and d(dst) for it */
    int wsrc_reorder, wddst_reorder;
    dnal_md wsrc_md, wddst_md;
    size_t wsrc_off, wddst_off;
    dnnl_memory_t wsrc_mem, wddst_mem;
    exec_t to_wsrc, to_wddst;
    weight_view wei_fwd, wei_bwd, dwei;
    int bwd_shares_fwd; /* backward-data reads the forward's weight copy */
    dnnl_memory_t bias, dbias;
    exec_t fwd, bwd_data, bwd_wei;
} weighted_layer;

weighted_layer *weighted_alloc(dnal_layer_kind kind, const char *name);
/* After the three descriptors are set: output tensor, weight views, source
 * reorder (if the forward picked another source layout), scratch. */
void weighted_finish(weighted_layer *c, const dnal_md *wplain);

/* Fills a layer's shared part. */
void layer_init(dnal_layer *l, const dnal_layer_ops *ops, dnal_layer_kind kind, const char *name);
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

#endif
