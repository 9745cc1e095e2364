/* Residual addition out = a + b. Backward hands d(out) to both inputs; the
 * owner sums gradients where a tensor feeds several layers. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct add_layer {
    dnal_layer base;
    dnal_pd pd;
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

static void add_backward(dnal_layer *l, const dnal_ctx *ctx, const dnal_pass *p)
{
    add_layer *a = (add_layer *)l;
    (void)p;
    DNNL_CHECK(dnnl_stream_wait(ctx->stream));
    const char *dy = mem_ptr(l->out->diff);
    for (int i = 0; i < 2; i++)
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
    a->pd = dnal_pd_binary_add(ctx, &x->md, &y->md, &x->md);
    tensor_set(out, &x->md);
    l->fwd_pd = a->pd;
    a->bytes = dnal_md_bytes(&x->md);
    layer_pd(l, a->pd);
    return l;
}
