/* What convolution and inner product share: three primitives (forward,
 * backward-data, backward-weights) over plain weights kept in the flat
 * buffer. Each primitive uses its operands in the layouts it picked; a view
 * (layer.c) reorders an operand only where that layout differs from the
 * tensor's or the flat buffer's. In the usual case activations need none and
 * weights one per primitive layout. */
#include <stdlib.h>

#include "internal.h"

static void weighted_bind(dnal_layer *l, const dnal_ctx *ctx, const dnal_buffers *b)
{
    weighted_layer *c = (weighted_layer *)l;
    void *s = b->scratch;
    c->wei = dnal_memory(ctx, &c->wei_fwd.have, param_ptr(l, b, 0));
    c->dwei_plain = dnal_memory(ctx, &c->dwei.have, grad_ptr(l, b, 0));
    view_bind(&c->src, ctx, l->in[0]->mem, b->priv, s, 1);
    view_bind(&c->wei_fwd, ctx, c->wei, b->priv, s, 1);
    view_bind(&c->wsrc, ctx, c->src.mem, b->priv, s, 1);
    view_bind(&c->ddst_wei, ctx, l->out->diff, b->priv, s, 1);
    view_bind(&c->dwei, ctx, c->dwei_plain, b->priv, s, 0);

    exec_init(&c->fwd, ctx, c->fwd_pd, s);
    exec_arg(&c->fwd, DNNL_ARG_SRC, c->src.mem);
    exec_arg(&c->fwd, DNNL_ARG_WEIGHTS, c->wei_fwd.mem);
    exec_arg(&c->fwd, DNNL_ARG_DST, l->out->mem);

    exec_init(&c->bwd_wei, ctx, c->bwd_wei_pd, s);
    exec_arg(&c->bwd_wei, DNNL_ARG_SRC, c->wsrc.mem);
    exec_arg(&c->bwd_wei, DNNL_ARG_DIFF_DST, c->ddst_wei.mem);
    exec_arg(&c->bwd_wei, DNNL_ARG_DIFF_WEIGHTS, c->dwei.mem);

    if (l->n_params == 2) {
        dnal_md bmd = dnal_md_plain(1, &l->param[1].dims[0]);
        c->bias = dnal_memory(ctx, &bmd, param_ptr(l, b, 1));
        c->dbias = dnal_memory(ctx, &bmd, grad_ptr(l, b, 1));
        exec_arg(&c->fwd, DNNL_ARG_BIAS, c->bias);
        exec_arg(&c->bwd_wei, DNNL_ARG_DIFF_BIAS, c->dbias);
    }
    DNAL_ASSERT(!l->in_diff[0] || c->bwd_data_pd);
    if (l->in_diff[0]) {
        if (!c->bwd_shares_fwd)
            view_bind(&c->wei_bwd, ctx, c->wei, b->priv, s, 1);
        view_bind(&c->ddst_data, ctx, l->out->diff, b->priv, s, 1);
        view_bind(&c->dsrc, ctx, l->in_diff[0], b->priv, s, 0);
        exec_init(&c->bwd_data, ctx, c->bwd_data_pd, s);
        exec_arg(&c->bwd_data, DNNL_ARG_DIFF_DST, c->ddst_data.mem);
        exec_arg(&c->bwd_data, DNNL_ARG_WEIGHTS,
                 c->bwd_shares_fwd ? c->wei_fwd.mem : c->wei_bwd.mem);
        exec_arg(&c->bwd_data, DNNL_ARG_DIFF_SRC, c->dsrc.mem);
    }
}

static void weighted_forward(dnal_layer *l, const dnal_ctx *ctx, const dnal_pass *p)
{
    weighted_layer *c = (weighted_layer *)l;
    (void)p;
    view_sync(&c->src, ctx);
    view_sync(&c->wei_fwd, ctx);
    exec_run(&c->fwd, ctx);
}

static void weighted_backward(dnal_layer *l, const dnal_ctx *ctx, const dnal_pass *p)
{
    weighted_layer *c = (weighted_layer *)l;
    (void)p;
    if (!l->frozen) {
        view_sync(&c->wsrc, ctx);
        view_sync(&c->ddst_wei, ctx);
        exec_run(&c->bwd_wei, ctx);
        view_sync(&c->dwei, ctx);
    }
    if (l->in_diff[0]) {
        /* forward already brought the weights into its layout */
        if (!c->bwd_shares_fwd)
            view_sync(&c->wei_bwd, ctx);
        view_sync(&c->ddst_data, ctx);
        exec_run(&c->bwd_data, ctx);
        view_sync(&c->dsrc, ctx);
    }
}

static void weighted_destroy(dnal_layer *l)
{
    weighted_layer *c = (weighted_layer *)l;
    exec_free(&c->fwd);
    exec_free(&c->bwd_data);
    exec_free(&c->bwd_wei);
    view_t *views[] = {&c->src, &c->wei_fwd, &c->wei_bwd, &c->ddst_data,
                       &c->dsrc, &c->wsrc, &c->ddst_wei, &c->dwei};
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++)
        view_free(views[i]);
    dnnl_memory_t mems[] = {c->wei, c->dwei_plain, c->bias, c->dbias};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        if (mems[i])
            dnnl_memory_destroy(mems[i]);
    dnnl_primitive_desc_destroy(c->fwd_pd);
    if (c->bwd_data_pd)
        dnnl_primitive_desc_destroy(c->bwd_data_pd);
    dnnl_primitive_desc_destroy(c->bwd_wei_pd);
    free(c);
}

static const dnal_layer_ops weighted_ops = {weighted_bind, weighted_forward, weighted_backward,
                                            weighted_destroy};

weighted_layer *weighted_alloc(dnal_layer_kind kind, const char *name, dnal_tensor *in,
                               dnal_tensor *out)
{
    return layer_new(sizeof(weighted_layer), &weighted_ops, kind, name, in, NULL, out);
}

void weighted_finish(weighted_layer *c, const dnal_md *wplain)
{
    dnal_layer *l = &c->base;
    dnal_md dst = dnal_pd_md(c->fwd_pd, dnnl_query_dst_md, 0);
    tensor_set(l->out, &dst);
    l->fwd_pd = c->fwd_pd;
    dnal_md fsrc = dnal_pd_md(c->fwd_pd, dnnl_query_src_md, 0);
    dnal_md wfwd = dnal_pd_md(c->fwd_pd, dnnl_query_weights_md, 0);
    view_plan(&c->src, &l->in[0]->md, &fsrc, l);
    /* a copy in another element type alone (the f32 classifier over bf16
     * activations) is no layout miss */
    dnal_md in_as = dnal_md_with_type(&l->in[0]->md, dnal_md_type(&fsrc));
    l->src_reorder = !dnal_md_equal(&in_as, &fsrc);
    view_plan(&c->wei_fwd, wplain, &wfwd, l);
    if (c->bwd_data_pd) {
        dnal_md wbwd = dnal_pd_md(c->bwd_data_pd, dnnl_query_weights_md, 0);
        dnal_md ddst = dnal_pd_md(c->bwd_data_pd, dnnl_query_diff_dst_md, 0);
        dnal_md dsrc = dnal_pd_md(c->bwd_data_pd, dnnl_query_diff_src_md, 0);
        c->bwd_shares_fwd = dnal_md_equal(&wbwd, &wfwd);
        if (!c->bwd_shares_fwd)
            view_plan(&c->wei_bwd, wplain, &wbwd, l);
        view_plan(&c->ddst_data, &dst, &ddst, l);
        view_plan(&c->dsrc, &l->in[0]->md, &dsrc, l);
    }
    dnal_md wsrc = dnal_pd_md(c->bwd_wei_pd, dnnl_query_src_md, 0);
    dnal_md wddst = dnal_pd_md(c->bwd_wei_pd, dnnl_query_diff_dst_md, 0);
    dnal_md dw = dnal_pd_md(c->bwd_wei_pd, dnnl_query_diff_weights_md, 0);
    view_plan(&c->wsrc, &fsrc, &wsrc, l);
    view_plan(&c->ddst_wei, &dst, &wddst, l);
    view_plan(&c->dwei, wplain, &dw, l);
    layer_pd(l, c->fwd_pd);
    if (c->bwd_data_pd)
        layer_pd(l, c->bwd_data_pd);
    layer_pd(l, c->bwd_wei_pd);
}
