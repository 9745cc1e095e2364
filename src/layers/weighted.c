/* What convolution and inner product share: three primitives (forward,
 * backward-data, backward-weights) over plain weights kept in the flat
 * buffer. Backward-data may pick another weight layout than forward: it then
 * gets its own reorder from the plain weights, and no reorder exists where
 * the layouts already agree. Likewise the source: the primitive reads the
 * producer's layout unless it picked another (at the network input). */
#include <stdlib.h>

#include "internal.h"

static void weighted_bind(dnal_layer *l, const dnal_ctx *ctx, const dnal_buffers *b)
{
    weighted_layer *c = (weighted_layer *)l;
    float *w = param_ptr(l, b, 0), *dw = grad_ptr(l, b, 0);
    wview_bind(&c->wei_fwd, ctx, w, b->priv, b->scratch, 1);
    if (!c->bwd_shares_fwd)
        wview_bind(&c->wei_bwd, ctx, w, b->priv, b->scratch, 1);
    wview_bind(&c->dwei, ctx, dw, b->priv, b->scratch, 0);

    dnnl_memory_t src = l->in[0]->mem, dsrc = l->in_diff[0];
    if (c->src_reorder) {
        c->src_mem = src = dnal_memory(ctx, &c->src_md, b->priv + c->src_off);
        dnal_pd pd = dnal_pd_reorder(ctx, &l->in[0]->md, &c->src_md);
        exec_init(&c->to_src, ctx, pd, b->scratch);
        exec_arg(&c->to_src, DNNL_ARG_FROM, l->in[0]->mem);
        exec_arg(&c->to_src, DNNL_ARG_TO, src);
        dnnl_primitive_desc_destroy(pd);
        if (l->in_diff[0]) {
            c->dsrc_mem = dsrc = dnal_memory(ctx, &c->src_md, b->priv + c->dsrc_off);
            pd = dnal_pd_reorder(ctx, &c->src_md, &l->in[0]->md);
            exec_init(&c->from_dsrc, ctx, pd, b->scratch);
            exec_arg(&c->from_dsrc, DNNL_ARG_FROM, dsrc);
            exec_arg(&c->from_dsrc, DNNL_ARG_TO, l->in_diff[0]);
            dnnl_primitive_desc_destroy(pd);
        }
    }

    exec_init(&c->fwd, ctx, c->fwd_pd, b->scratch);
    exec_arg(&c->fwd, DNNL_ARG_SRC, src);
    exec_arg(&c->fwd, DNNL_ARG_WEIGHTS, c->wei_fwd.prim_mem);
    exec_arg(&c->fwd, DNNL_ARG_DST, l->out->mem);

    dnnl_memory_t wsrc = src;
    if (c->wsrc_reorder) {
        c->wsrc_mem = wsrc = dnal_memory(ctx, &c->wsrc_md, b->priv + c->wsrc_off);
        dnal_pd pd = dnal_pd_reorder(ctx, &c->src_md, &c->wsrc_md);
        exec_init(&c->to_wsrc, ctx, pd, b->scratch);
        exec_arg(&c->to_wsrc, DNNL_ARG_FROM, src);
        exec_arg(&c->to_wsrc, DNNL_ARG_TO, wsrc);
        dnnl_primitive_desc_destroy(pd);
    }
    dnnl_memory_t wddst = l->out->diff;
    if (c->wddst_reorder) {
        c->wddst_mem = wddst = dnal_memory(ctx, &c->wddst_md, b->priv + c->wddst_off);
        dnal_pd pd = dnal_pd_reorder(ctx, &l->out->md, &c->wddst_md);
        exec_init(&c->to_wddst, ctx, pd, b->scratch);
        exec_arg(&c->to_wddst, DNNL_ARG_FROM, l->out->diff);
        exec_arg(&c->to_wddst, DNNL_ARG_TO, wddst);
        dnnl_primitive_desc_destroy(pd);
    }
    exec_init(&c->bwd_wei, ctx, c->bwd_wei_pd, b->scratch);
    exec_arg(&c->bwd_wei, DNNL_ARG_SRC, wsrc);
    exec_arg(&c->bwd_wei, DNNL_ARG_DIFF_DST, wddst);
    exec_arg(&c->bwd_wei, DNNL_ARG_DIFF_WEIGHTS, c->dwei.prim_mem);

    if (l->n_params == 2) {
        dnal_md bmd = dnal_md_plain(1, &l->param[1].dims[0]);
        c->bias = dnal_memory(ctx, &bmd, param_ptr(l, b, 1));
        c->dbias = dnal_memory(ctx, &bmd, grad_ptr(l, b, 1));
        exec_arg(&c->fwd, DNNL_ARG_BIAS, c->bias);
        exec_arg(&c->bwd_wei, DNNL_ARG_DIFF_BIAS, c->dbias);
    }
    DNAL_ASSERT(!l->in_diff[0] || c->bwd_data_pd);
    if (l->in_diff[0]) {
        exec_init(&c->bwd_data, ctx, c->bwd_data_pd, b->scratch);
        exec_arg(&c->bwd_data, DNNL_ARG_DIFF_DST, l->out->diff);
        exec_arg(&c->bwd_data, DNNL_ARG_WEIGHTS,
                 c->bwd_shares_fwd ? c->wei_fwd.prim_mem : c->wei_bwd.prim_mem);
        exec_arg(&c->bwd_data, DNNL_ARG_DIFF_SRC, dsrc);
    }
}

static void weighted_forward(dnal_layer *l, const dnal_ctx *ctx, const dnal_pass *p)
{
    weighted_layer *c = (weighted_layer *)l;
    (void)p;
    if (c->src_reorder)
        exec_run(&c->to_src, ctx);
    wview_sync(&c->wei_fwd, ctx);
    exec_run(&c->fwd, ctx);
}

static void weighted_backward(dnal_layer *l, const dnal_ctx *ctx, const dnal_pass *p)
{
    weighted_layer *c = (weighted_layer *)l;
    (void)p;
    if (!l->frozen) {
        if (c->wsrc_reorder)
            exec_run(&c->to_wsrc, ctx);
        if (c->wddst_reorder)
            exec_run(&c->to_wddst, ctx);
        exec_run(&c->bwd_wei, ctx);
        wview_sync(&c->dwei, ctx);
    }
    if (l->in_diff[0]) {
        /* forward already brought the weights into its layout */
        if (!c->bwd_shares_fwd)
            wview_sync(&c->wei_bwd, ctx);
        exec_run(&c->bwd_data, ctx);
        if (c->src_reorder)
            exec_run(&c->from_dsrc, ctx);
    }
}

static void weighted_destroy(dnal_layer *l)
{
    weighted_layer *c = (weighted_layer *)l;
    exec_free(&c->fwd);
    exec_free(&c->bwd_data);
    exec_free(&c->bwd_wei);
    exec_free(&c->to_src);
    exec_free(&c->from_dsrc);
    exec_free(&c->to_wsrc);
    exec_free(&c->to_wddst);
    if (c->wsrc_mem)
        dnnl_memory_destroy(c->wsrc_mem);
    if (c->wddst_mem)
        dnnl_memory_destroy(c->wddst_mem);
    if (c->src_mem)
        dnnl_memory_destroy(c->src_mem);
    if (c->dsrc_mem)
        dnnl_memory_destroy(c->dsrc_mem);
    wview_free(&c->wei_fwd);
    wview_free(&c->wei_bwd);
    wview_free(&c->dwei);
    if (c->bias)
        dnnl_memory_destroy(c->bias);
    if (c->dbias)
        dnnl_memory_destroy(c->dbias);
    dnnl_primitive_desc_destroy(c->fwd_pd);
    if (c->bwd_data_pd)
        dnnl_primitive_desc_destroy(c->bwd_data_pd);
    dnnl_primitive_desc_destroy(c->bwd_wei_pd);
    free(c);
}

static const dnal_layer_ops weighted_ops = {weighted_bind, weighted_forward, weighted_backward,
                                            weighted_destroy};

weighted_layer *weighted_alloc(dnal_layer_kind kind, const char *name)
{
    weighted_layer *c = calloc(1, sizeof *c);
    DNAL_ASSERT(c);
    layer_init(&c->base, &weighted_ops, kind, name);
    return c;
}

void weighted_finish(weighted_layer *c, const dnal_md *wplain)
{
    dnal_layer *l = &c->base;
    dnal_md dst = dnal_pd_md(c->fwd_pd, dnnl_query_dst_md, 0);
    tensor_set(l->out, &dst);
    l->fwd_pd = c->fwd_pd;
    dnal_md wfwd = dnal_pd_md(c->fwd_pd, dnnl_query_weights_md, 0);
    dnal_md wbwd = c->bwd_data_pd ? dnal_pd_md(c->bwd_data_pd, dnnl_query_weights_md, 0) : wfwd;
    dnal_md dw = dnal_pd_md(c->bwd_wei_pd, dnnl_query_diff_weights_md, 0);
    wview_plan(&c->wei_fwd, wplain, &wfwd, &l->priv_bytes);
    c->bwd_shares_fwd = dnal_md_equal(&wbwd, &wfwd);
    if (!c->bwd_shares_fwd)
        wview_plan(&c->wei_bwd, wplain, &wbwd, &l->priv_bytes);
    wview_plan(&c->dwei, wplain, &dw, &l->priv_bytes);
    c->src_md = dnal_pd_md(c->fwd_pd, dnnl_query_src_md, 0);
    c->src_reorder = !dnal_md_equal(&c->src_md, &l->in[0]->md);
    if (c->src_reorder) {
        c->src_off = layer_priv(l, dnal_md_bytes(&c->src_md));
        c->dsrc_off = layer_priv(l, dnal_md_bytes(&c->src_md));
    }
    c->wsrc_md = dnal_pd_md(c->bwd_wei_pd, dnnl_query_src_md, 0);
    c->wsrc_reorder = !dnal_md_equal(&c->wsrc_md, &c->src_md);
    if (c->wsrc_reorder)
        c->wsrc_off = layer_priv(l, dnal_md_bytes(&c->wsrc_md));
    c->wddst_md = dnal_pd_md(c->bwd_wei_pd, dnnl_query_diff_dst_md, 0);
    c->wddst_reorder = !dnal_md_equal(&c->wddst_md, &dst);
    if (c->wddst_reorder)
        c->wddst_off = layer_priv(l, dnal_md_bytes(&c->wddst_md));
    layer_pd(l, c->fwd_pd);
    if (c->bwd_data_pd)
        layer_pd(l, c->bwd_data_pd);
    layer_pd(l, c->bwd_wei_pd);
}
