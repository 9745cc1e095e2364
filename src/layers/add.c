/* Residual addition out = a + b, and with a fused ReLU out = max(a + b, 0)
 * (src/net/fuse.c fuses the ReLU that reads the sum alone). Backward hands
 * d(out) to both inputs, with the fused ReLU only where out > 0 (masked
 * into one, copied to the other); the owner sums gradients where a tensor
 * feeds several layers. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct add_layer {
    dnal_layer base;
    dnal_pd pd;
    int relu;
    exec_t fwd;
    size_t bytes;
} add_layer;

static void add_bind(dnal_layer *l, const dnal_ctx *ctx, const dnal_buffers *b)
{
    add_layer *a = (add_layer *)l;
    exec_init(&a->fwd, ctx, a->pd, b->scratch);
    exec_arg(&a->fwd, DNNL_ARG_SRC_0, l->in[0]->mem);
    exec_arg(&a->fwd, DNNL_ARG_SRC_1, l->in[1]->mem);
    exec_arg(&a->fwd, DNNL_ARG_DST, l->out->mem);
}

static void add_forward(dnal_layer *l, const dnal_ctx *ctx, const dnal_pass *p)
{
    (void)p;
    exec_run(&((add_layer *)l)->fwd, ctx);
}

/* d = (y > 0 ? dy : 0). Padded channels of a blocked layout hold y = 0, so
 * their gradient stays 0. */
static void relu_backward(const float *restrict y, const float *restrict dy, float *restrict d,
                          size_t n)
{
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        float g = dy[i]; /* loaded unconditionally: the loop becomes a vector select */
        d[i] = y[i] > 0.0f ? g : 0.0f;
    }
}

/* The same over bf16: a bf16 is > 0 exactly when its bits read as a signed
 * 16-bit integer are > 0 (+0 and -0 are not; a positive NaN would pass, but
 * a NaN ends the run at the step's non-finite check anyway) */
static void relu_backward_bf16(const int16_t *restrict y, const uint16_t *restrict dy,
                               uint16_t *restrict d, size_t n)
{
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        uint16_t g = dy[i];
        d[i] = y[i] > 0 ? g : 0;
    }
}

static void add_backward(dnal_layer *l, const dnal_ctx *ctx, const dnal_pass *p)
{
    add_layer *a = (add_layer *)l;
    (void)p;
    DNNL_CHECK(dnnl_stream_wait(ctx->stream));
    const char *dy = mem_ptr(l->out->diff);
    int first = l->in_diff[0] ? 0 : 1;
    if (a->relu && l->in_diff[first]) {
        /* masked into the first input's gradient, then copied to the other's */
        void *d = mem_ptr(l->in_diff[first]);
        if (dnal_md_is_bf16(&l->out->md))
            relu_backward_bf16(mem_ptr(l->out->mem), (const uint16_t *)dy, d, a->bytes / 2);
        else
            relu_backward(mem_ptr(l->out->mem), (const float *)dy, d, a->bytes / sizeof(float));
        dy = (const char *)d;
        first++;
    }
    for (int i = first; i < 2; i++)
        if (l->in_diff[i])
            copy_parallel(mem_ptr(l->in_diff[i]), dy, a->bytes);
}

static void add_destroy(dnal_layer *l)
{
    add_layer *a = (add_layer *)l;
    exec_free(&a->fwd);
    dnnl_primitive_desc_destroy(a->pd);
    free(a);
}

static const dnal_layer_ops add_ops = {add_bind, add_forward, add_backward, add_destroy};

dnal_layer *dnal_add_create(const dnal_ctx *ctx, const char *name, dnal_tensor *x,
                            dnal_tensor *y, dnal_tensor *out)
{
    add_layer *a = layer_new(sizeof *a, &add_ops, DNAL_ADD, name, x, y, out);
    dnal_layer *l = &a->base;
    if (!dnal_md_equal(&x->md, &y->md)) {
        char s1[32], s2[32];
        dnal_fatal(DNAL_EXIT_USAGE, "%s: inputs differ (%lldx%lldx%lld %s vs %lldx%lldx%lld %s)",
                   l->name, (long long)x->c, (long long)x->h, (long long)x->w,
                   dnal_md_layout_str(&x->md, s1, sizeof s1), (long long)y->c, (long long)y->h,
                   (long long)y->w, dnal_md_layout_str(&y->md, s2, sizeof s2));
    }
    a->pd = dnal_pd_binary_add(ctx, &x->md, &y->md, &x->md, 0);
    tensor_set(out, &x->md);
    l->fwd_pd = a->pd;
    a->bytes = dnal_md_bytes(&x->md);
    layer_pd(l, a->pd);
    return l;
}

int dnal_add_fuse_relu(dnal_layer *l, const dnal_ctx *ctx)
{
    add_layer *a = (add_layer *)l;
    DNAL_ASSERT(l->kind == DNAL_ADD && !a->relu);
    dnal_pd pd = dnal_pd_binary_add(ctx, &l->in[0]->md, &l->in[1]->md, &l->in[0]->md, 1);
    if (dnal_pd_is_reference(pd)) { /* a separate ReLU pass is faster */
        dnnl_primitive_desc_destroy(pd);
        return 0;
    }
    dnnl_primitive_desc_destroy(a->pd);
    a->pd = l->fwd_pd = pd;
    l->n_pd = 0;
    layer_pd(l, pd);
    a->relu = 1;
    return 1;
}
