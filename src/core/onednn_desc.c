/* Every oneDNN 2.x descriptor-creation call of dnal lives in this file.
 *
 * oneDNN 3.x replaced the op descriptors (*_desc_init + primitive_desc_create)
 * by one *_primitive_desc_create call per primitive and made memory
 * descriptors opaque; a port touches this file only. All primitives use a
 * user-managed scratchpad so that one buffer serves the whole network. */
#include <stdio.h>
#include <string.h>

#include "dnal/core.h"

/* ---------------------------------------------------------------- memory */

static dnnl_format_tag_t plain_tag(int ndims)
{
    switch (ndims) {
    case 1: return dnnl_a;
    case 2: return dnnl_ab;
    case 3: return dnnl_abc;
    case 4: return dnnl_abcd;
    case 5: return dnnl_abcde;
    default: dnal_fatal(DNAL_EXIT_USAGE, "unsupported tensor rank %d", ndims);
    }
}

static dnal_md md_by_tag(int ndims, const int64_t *dims, dnnl_format_tag_t tag)
{
    dnal_md md;
    dnnl_dims_t d = {0};
    for (int i = 0; i < ndims; i++)
        d[i] = dims[i];
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&md, ndims, d, dnnl_f32, tag));
    return md;
}

dnal_md dnal_md_plain(int ndims, const int64_t *dims)
{
    return md_by_tag(ndims, dims, plain_tag(ndims));
}

dnal_md dnal_md_channels_last(const int64_t *dims)
{
    return md_by_tag(4, dims, dnnl_acdb);
}

dnal_md dnal_md_any(int ndims, const int64_t *dims)
{
    return md_by_tag(ndims, dims, dnnl_format_tag_any);
}

/* Strides and blocks count elements, not bytes, so a layout carries over
 * to another element type unchanged. */
dnal_md dnal_md_with_type(const dnal_md *md, dnnl_data_type_t dtype)
{
    dnal_md r = *md;
    DNAL_ASSERT(md->format_kind == dnnl_blocked || md->format_kind == dnnl_format_kind_any);
    DNAL_ASSERT(md->extra.flags == 0);
    r.data_type = dtype;
    return r;
}

dnnl_data_type_t dnal_md_type(const dnal_md *md)
{
    return md->data_type;
}

int dnal_md_is_bf16(const dnal_md *md)
{
    return md->data_type == dnnl_bf16;
}

dnal_md dnal_md_tag4(const int64_t dims[4], const char *tag)
{
    dnnl_format_tag_t t;
    if (!strcmp(tag, "nchw"))
        t = dnnl_nchw;
    else if (!strcmp(tag, "nhwc"))
        t = dnnl_nhwc;
    else if (!strcmp(tag, "nChw8c"))
        t = dnnl_nChw8c;
    else if (!strcmp(tag, "nChw16c"))
        t = dnnl_nChw16c;
    else
        dnal_fatal(DNAL_EXIT_USAGE, "unknown layout tag '%s'", tag);
    return md_by_tag(4, dims, t);
}

dnal_md dnal_md_with_channels(const dnal_md *md, int64_t c)
{
    if (md->ndims != 4)
        dnal_fatal(DNAL_EXIT_USAGE, "cannot change the channels of this layout");
    int64_t dims[4] = {md->dims[0], c, md->dims[2], md->dims[3]};
    return dnal_md_like(md, 4, dims);
}

/* The extent of dim d outside its inner blocks (padded dims / blocks). */
static int64_t outer_extent(const dnal_md *md, int d)
{
    const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
    int64_t blk = 1;
    for (int j = 0; j < b->inner_nblks; j++)
        if (b->inner_idxs[j] == d)
            blk *= b->inner_blks[j];
    return md->padded_dims[d] / blk;
}

/* dim a lies outside dim b: a larger stride; on a tie (a dim of extent 1
 * shares its stride with its neighbour) the dim of extent > 1 lies outside,
 * then the lower index (oneDNN's stable order) */
static int outside(const dnal_md *md, int a, int b)
{
    const dnnl_dims_t *s = &md->format_desc.blocking.strides;
    if ((*s)[a] != (*s)[b])
        return (*s)[a] > (*s)[b];
    int ea = outer_extent(md, a) > 1, eb = outer_extent(md, b) > 1;
    return ea != eb ? ea : a < b;
}

dnal_md dnal_md_like(const dnal_md *kind, int ndims, const int64_t *dims)
{
    if (kind->format_kind != dnnl_blocked || kind->ndims != ndims)
        dnal_fatal(DNAL_EXIT_USAGE, "no layout kind to give %d-D dims", ndims);
    int order[DNNL_MAX_NDIMS]; /* outermost first */
    for (int i = 0; i < ndims; i++) {
        order[i] = i;
        for (int j = i; j > 0 && outside(kind, order[j], order[j - 1]); j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    }
    dnal_md md;
    memset(&md, 0, sizeof md);
    md.ndims = ndims;
    md.data_type = kind->data_type;
    md.format_kind = dnnl_blocked;
    dnnl_blocking_desc_t *b = &md.format_desc.blocking;
    *b = kind->format_desc.blocking;
    int64_t blk[DNNL_MAX_NDIMS], stride = 1;
    for (int d = 0; d < ndims; d++)
        blk[d] = 1;
    for (int j = 0; j < b->inner_nblks; j++) {
        blk[b->inner_idxs[j]] *= b->inner_blks[j];
        stride *= b->inner_blks[j];
    }
    for (int d = 0; d < ndims; d++) {
        md.dims[d] = dims[d];
        md.padded_dims[d] = (dims[d] + blk[d] - 1) / blk[d] * blk[d];
    }
    for (int i = ndims - 1; i >= 0; i--) {
        int d = order[i];
        b->strides[d] = stride;
        stride *= md.padded_dims[d] / blk[d];
    }
    return md;
}

/* dims of the probe: all above 1 and distinct strides in every layout */
static const int64_t probe_dims[4] = {2, 32, 8, 8};

int dnal_md_conv_layout_of(const dnal_ctx *ctx, dnnl_data_type_t dtype, dnal_md *layout)
{
    const int64_t wdims[4] = {32, 32, 3, 3};
    dnal_md f32 = dnal_md_any(4, probe_dims), f32w = dnal_md_any(4, wdims);
    dnal_md src = dnal_md_with_type(&f32, dtype), wei = dnal_md_with_type(&f32w, dtype);
    dnal_pd pd = dnal_pd_conv_fwd_try(ctx, &src, &wei, NULL, &src, (dnal_conv_geom){1, 1});
    if (!pd)
        return 0;
    *layout = dnal_pd_md(pd, dnnl_query_dst_md, 0);
    dnnl_primitive_desc_destroy(pd);
    return 1;
}

dnal_md dnal_md_conv_layout(const dnal_ctx *ctx)
{
    dnal_md md;
    DNAL_ASSERT(dnal_md_conv_layout_of(ctx, ctx->dtype, &md));
    return md;
}

dnal_md dnal_md_channels_last_kind(const dnal_ctx *ctx)
{
    dnal_md md = dnal_md_channels_last(probe_dims);
    return dnal_md_with_type(&md, ctx->dtype);
}

int dnal_md_equal(const dnal_md *a, const dnal_md *b)
{
    return dnnl_memory_desc_equal(a, b);
}

int dnal_md_dims(const dnal_md *md, int64_t dims[4])
{
    DNAL_ASSERT(md->ndims >= 1 && md->ndims <= 4);
    for (int i = 0; i < 4; i++)
        dims[i] = i < md->ndims ? md->dims[i] : 1;
    return md->ndims;
}

size_t dnal_md_bytes(const dnal_md *md)
{
    return dnnl_memory_desc_get_size(md);
}

int dnal_md_chan_view(const dnal_md *md, dnal_chan_view *v)
{
    if (md->format_kind != dnnl_blocked ||
        (md->data_type != dnnl_f32 && md->data_type != dnnl_bf16))
        return 0;
    if (md->ndims != 2 && md->ndims != 4)
        return 0;
    const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
    memset(v, 0, sizeof *v);
    v->bf16 = md->data_type == dnnl_bf16;
    v->n = md->dims[0];
    v->c = md->dims[1];
    v->h = md->ndims == 4 ? md->dims[2] : 1;
    v->w = md->ndims == 4 ? md->dims[3] : 1;
    v->cb = 1;
    if (b->inner_nblks == 1 && b->inner_idxs[0] == 1)
        v->cb = b->inner_blks[0];
    else if (b->inner_nblks != 0)
        return 0;
    v->cpad = md->padded_dims[1];
    v->sn = b->strides[0];
    v->sc = b->strides[1];
    v->sh = md->ndims == 4 ? b->strides[2] : 0;
    v->sw = md->ndims == 4 ? b->strides[3] : 0;
    return 1;
}

int dnal_md_is_channels_last(const dnal_md *md)
{
    dnal_chan_view v;
    return md->ndims == 4 && dnal_md_chan_view(md, &v) && v.cb == 1 && v.sc == 1 &&
           v.sw == v.c && v.sh == v.w * v.c && v.sn == v.h * v.sh;
}

const char *dnal_md_layout_str(const dnal_md *md, char *buf, size_t len)
{
    if (md->format_kind == dnnl_format_kind_any) {
        snprintf(buf, len, "any");
        return buf;
    }
    if (md->format_kind != dnnl_blocked) {
        snprintf(buf, len, "opaque");
        return buf;
    }
    /* outer dims by decreasing stride, lower case; then the inner blocks */
    const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
    int order[DNNL_MAX_NDIMS], nd = md->ndims;
    for (int i = 0; i < nd; i++)
        order[i] = i;
    for (int i = 0; i < nd; i++)
        for (int j = i + 1; j < nd; j++)
            if (b->strides[order[j]] > b->strides[order[i]]) {
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
    size_t k = 0;
    for (int i = 0; i < nd && k + 1 < len; i++) {
        int d = order[i], blocked = 0;
        for (int j = 0; j < b->inner_nblks; j++)
            blocked |= b->inner_idxs[j] == d;
        buf[k++] = (char)((blocked ? 'A' : 'a') + d);
    }
    for (int j = 0; j < b->inner_nblks && k + 8 < len; j++)
        k += (size_t)snprintf(buf + k, len - k, "%lld%c", (long long)b->inner_blks[j],
                              (char)('a' + b->inner_idxs[j]));
    buf[k < len ? k : len - 1] = '\0';
    return buf;
}

/* ------------------------------------------------------------- primitives */

/* post_relu: a ReLU post-op on the primitive's output */
static dnnl_status_t try_create_pd_ops(const dnal_ctx *ctx, const void *op_desc, dnal_pd hint,
                                       int post_relu, dnal_pd *pd)
{
    dnnl_primitive_attr_t attr;
    *pd = NULL;
    DNNL_CHECK(dnnl_primitive_attr_create(&attr));
    DNNL_CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    if (post_relu) {
        dnnl_post_ops_t ops;
        DNNL_CHECK(dnnl_post_ops_create(&ops));
        DNNL_CHECK(dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f));
        DNNL_CHECK(dnnl_primitive_attr_set_post_ops(attr, ops));
        dnnl_post_ops_destroy(ops);
    }
    dnnl_status_t s = dnnl_primitive_desc_create(pd, op_desc, attr, ctx->engine, hint);
    dnnl_primitive_attr_destroy(attr);
    return s;
}

static dnnl_status_t try_create_pd(const dnal_ctx *ctx, const void *op_desc, dnal_pd hint,
                                   dnal_pd *pd)
{
    return try_create_pd_ops(ctx, op_desc, hint, 0, pd);
}

static dnal_pd create_pd_ops(const dnal_ctx *ctx, const void *op_desc, dnal_pd hint,
                             int post_relu, const char *what)
{
    dnal_pd pd;
    dnnl_status_t s = try_create_pd_ops(ctx, op_desc, hint, post_relu, &pd);
    if (s != dnnl_success)
        dnal_fatal(DNAL_EXIT_USAGE, "oneDNN has no %s primitive for these shapes: %s", what,
                   dnal_dnnl_status_str(s));
    return pd;
}

static dnal_pd create_pd(const dnal_ctx *ctx, const void *op_desc, dnal_pd hint, const char *what)
{
    return create_pd_ops(ctx, op_desc, hint, 0, what);
}

static void conv_arrays(dnal_conv_geom g, dnnl_dims_t strides, dnnl_dims_t pad)
{
    strides[0] = strides[1] = g.stride;
    pad[0] = pad[1] = g.pad;
}

static dnnl_convolution_desc_t conv_fwd_desc(const dnal_md *src, const dnal_md *wei,
                                             const dnal_md *bias, const dnal_md *dst,
                                             dnal_conv_geom g)
{
    dnnl_convolution_desc_t d;
    dnnl_dims_t strides, pad;
    conv_arrays(g, strides, pad);
    DNNL_CHECK(dnnl_convolution_forward_desc_init(&d, dnnl_forward_training,
                                                  dnnl_convolution_direct, src, wei, bias, dst,
                                                  strides, pad, pad));
    return d;
}

dnal_pd dnal_pd_conv_fwd(const dnal_ctx *ctx, const dnal_md *src, const dnal_md *wei,
                         const dnal_md *bias, const dnal_md *dst, dnal_conv_geom g)
{
    dnnl_convolution_desc_t d = conv_fwd_desc(src, wei, bias, dst, g);
    return create_pd(ctx, &d, NULL, "convolution forward");
}

dnal_pd dnal_pd_conv_fwd_try(const dnal_ctx *ctx, const dnal_md *src, const dnal_md *wei,
                             const dnal_md *bias, const dnal_md *dst, dnal_conv_geom g)
{
    dnnl_convolution_desc_t d = conv_fwd_desc(src, wei, bias, dst, g);
    dnal_pd pd;
    return try_create_pd(ctx, &d, NULL, &pd) == dnnl_success ? pd : NULL;
}

dnal_pd dnal_pd_conv_bwd_data(const dnal_ctx *ctx, const dnal_md *diff_src, const dnal_md *wei,
                              const dnal_md *diff_dst, dnal_conv_geom g, dnal_pd hint)
{
    dnnl_convolution_desc_t d;
    dnnl_dims_t strides, pad;
    conv_arrays(g, strides, pad);
    DNNL_CHECK(dnnl_convolution_backward_data_desc_init(&d, dnnl_convolution_direct, diff_src,
                                                        wei, diff_dst, strides, pad, pad));
    return create_pd(ctx, &d, hint, "convolution backward-data");
}

dnal_pd dnal_pd_conv_bwd_weights(const dnal_ctx *ctx, const dnal_md *src,
                                 const dnal_md *diff_wei, const dnal_md *diff_bias,
                                 const dnal_md *diff_dst, dnal_conv_geom g, dnal_pd hint)
{
    dnnl_convolution_desc_t d;
    dnnl_dims_t strides, pad;
    conv_arrays(g, strides, pad);
    DNNL_CHECK(dnnl_convolution_backward_weights_desc_init(&d, dnnl_convolution_direct, src,
                                                           diff_wei, diff_bias, diff_dst,
                                                           strides, pad, pad));
    return create_pd(ctx, &d, hint, "convolution backward-weights");
}

dnal_pd dnal_pd_bn_fwd(const dnal_ctx *ctx, int kind, const dnal_md *data, float eps, int relu)
{
    dnnl_batch_normalization_desc_t d;
    unsigned flags = dnnl_use_scale | dnnl_use_shift | (relu ? dnnl_fuse_norm_relu : 0);
    dnnl_prop_kind_t prop = dnnl_forward_training;
    if (kind == DNAL_BN_INFER) {
        flags |= dnnl_use_global_stats;
        prop = dnnl_forward_inference;
    }
    DNNL_CHECK(dnnl_batch_normalization_forward_desc_init(&d, prop, data, eps, flags));
    return create_pd(ctx, &d, NULL, "batch-norm forward");
}

dnal_pd dnal_pd_bn_bwd(const dnal_ctx *ctx, const dnal_md *data, float eps, int relu,
                       dnal_pd hint)
{
    dnnl_batch_normalization_desc_t d;
    unsigned flags = dnnl_use_scale | dnnl_use_shift | (relu ? dnnl_fuse_norm_relu : 0);
    DNNL_CHECK(dnnl_batch_normalization_backward_desc_init(&d, dnnl_backward, data, data, eps,
                                                           flags));
    return create_pd(ctx, &d, hint, "batch-norm backward");
}

dnal_pd dnal_pd_eltwise_fwd(const dnal_ctx *ctx, dnnl_alg_kind_t alg, const dnal_md *data,
                            float alpha, float beta)
{
    dnnl_eltwise_desc_t d;
    DNNL_CHECK(dnnl_eltwise_forward_desc_init(&d, dnnl_forward_training, alg, data, alpha, beta));
    return create_pd(ctx, &d, NULL, "eltwise forward");
}

dnal_pd dnal_pd_eltwise_bwd(const dnal_ctx *ctx, dnnl_alg_kind_t alg, const dnal_md *data,
                            float alpha, float beta, dnal_pd hint)
{
    dnnl_eltwise_desc_t d;
    DNNL_CHECK(dnnl_eltwise_backward_desc_init(&d, alg, data, data, alpha, beta));
    return create_pd(ctx, &d, hint, "eltwise backward");
}

static void pool_arrays(dnal_pool_geom g, dnnl_dims_t k, dnnl_dims_t s, dnnl_dims_t p)
{
    k[0] = k[1] = g.kernel;
    s[0] = s[1] = g.stride;
    p[0] = p[1] = g.pad;
}

dnal_pd dnal_pd_pool_fwd(const dnal_ctx *ctx, dnnl_alg_kind_t alg, const dnal_md *src,
                         const dnal_md *dst, dnal_pool_geom g)
{
    dnnl_pooling_desc_t d;
    dnnl_dims_t k, s, p;
    pool_arrays(g, k, s, p);
    DNNL_CHECK(dnnl_pooling_forward_desc_init(&d, dnnl_forward_training, alg, src, dst, s, k, p, p));
    return create_pd(ctx, &d, NULL, "pooling forward");
}

dnal_pd dnal_pd_pool_bwd(const dnal_ctx *ctx, dnnl_alg_kind_t alg, const dnal_md *diff_src,
                         const dnal_md *diff_dst, dnal_pool_geom g, dnal_pd hint)
{
    dnnl_pooling_desc_t d;
    dnnl_dims_t k, s, p;
    pool_arrays(g, k, s, p);
    DNNL_CHECK(dnnl_pooling_backward_desc_init(&d, alg, diff_src, diff_dst, s, k, p, p));
    return create_pd(ctx, &d, hint, "pooling backward");
}

dnal_pd dnal_pd_ip_fwd(const dnal_ctx *ctx, const dnal_md *src, const dnal_md *wei,
                       const dnal_md *bias, const dnal_md *dst)
{
    dnnl_inner_product_desc_t d;
    DNNL_CHECK(dnnl_inner_product_forward_desc_init(&d, dnnl_forward_training, src, wei, bias, dst));
    return create_pd(ctx, &d, NULL, "inner-product forward");
}

dnal_pd dnal_pd_ip_bwd_data(const dnal_ctx *ctx, const dnal_md *diff_src, const dnal_md *wei,
                            const dnal_md *diff_dst, dnal_pd hint)
{
    dnnl_inner_product_desc_t d;
    DNNL_CHECK(dnnl_inner_product_backward_data_desc_init(&d, diff_src, wei, diff_dst));
    return create_pd(ctx, &d, hint, "inner-product backward-data");
}

dnal_pd dnal_pd_ip_bwd_weights(const dnal_ctx *ctx, const dnal_md *src, const dnal_md *diff_wei,
                               const dnal_md *diff_bias, const dnal_md *diff_dst, dnal_pd hint)
{
    dnnl_inner_product_desc_t d;
    DNNL_CHECK(dnnl_inner_product_backward_weights_desc_init(&d, src, diff_wei, diff_bias, diff_dst));
    return create_pd(ctx, &d, hint, "inner-product backward-weights");
}

dnal_pd dnal_pd_binary_add(const dnal_ctx *ctx, const dnal_md *a, const dnal_md *b,
                           const dnal_md *dst, int relu)
{
    dnnl_binary_desc_t d;
    DNNL_CHECK(dnnl_binary_desc_init(&d, dnnl_binary_add, a, b, dst));
    return create_pd_ops(ctx, &d, NULL, relu, "binary add");
}

dnal_pd dnal_pd_reorder(const dnal_ctx *ctx, const dnal_md *src, const dnal_md *dst)
{
    dnnl_primitive_attr_t attr;
    dnal_pd pd = NULL;
    DNNL_CHECK(dnnl_primitive_attr_create(&attr));
    DNNL_CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    DNNL_CHECK(dnnl_reorder_primitive_desc_create(&pd, src, ctx->engine, dst, ctx->engine, attr));
    dnnl_primitive_attr_destroy(attr);
    return pd;
}

/* ---------------------------------------------------------------- queries */

dnal_md dnal_pd_md(dnal_pd pd, dnnl_query_t what, int index)
{
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, what, index);
    dnal_md zero;
    if (md)
        return *md;
    memset(&zero, 0, sizeof zero);
    return zero;
}

size_t dnal_pd_scratch_bytes(dnal_pd pd)
{
    dnal_md md = dnal_pd_md(pd, dnnl_query_scratchpad_md, 0);
    return dnnl_memory_desc_get_size(&md);
}

const char *dnal_pd_impl(dnal_pd pd)
{
    const char *impl = NULL;
    DNNL_CHECK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl));
    return impl;
}

int dnal_pd_is_reference(dnal_pd pd)
{
    return strstr(dnal_pd_impl(pd), "ref") != NULL;
}

int dnal_pd_is_generic(dnal_pd pd)
{
    const char *impl = dnal_pd_impl(pd);
    size_t n = strlen(impl);
    return n >= 4 && !strcmp(impl + n - 4, ":any");
}

dnnl_primitive_t dnal_primitive(dnal_pd pd)
{
    dnnl_primitive_t p;
    DNNL_CHECK(dnnl_primitive_create(&p, pd));
    return p;
}

dnnl_memory_t dnal_memory(const dnal_ctx *ctx, const dnal_md *md, void *handle)
{
    dnnl_memory_t m;
    DNNL_CHECK(dnnl_memory_create(&m, md, ctx->engine, handle ? handle : DNNL_MEMORY_NONE));
    return m;
}
