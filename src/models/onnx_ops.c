/* Each node of an ONNX graph into dnal's operations (one layer each), in the
 * graph's order, every input, attribute and weight shape checked first.
 * Identity, Dropout, Flatten and Reshape only rename a value (onnx_values.c);
 * Pad and Gather on channels, Slice and Add in onnx_place.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

/* ------------------------------------------------------------- attributes */

static const Onnx__AttributeProto *ints_attr(ox_ctx *c, const Onnx__NodeProto *n, const char *name,
                                             size_t count)
{
    const Onnx__AttributeProto *a = ox_attr(n, name);
    if (a && a->n_ints != count)
        ox_bad(c->g, n, "attribute %s has %zu entries, not %zu", name, a->n_ints, count);
    return a;
}

static double attr_float(ox_ctx *c, const Onnx__NodeProto *n, const char *name, double dflt)
{
    const Onnx__AttributeProto *a = ox_attr(n, name);
    if (a && !a->has_f)
        ox_bad(c->g, n, "attribute %s is not a float", name);
    return a ? a->f : dflt;
}

/* kernel, stride and padding of a conv or pool: square and symmetric, as
 * dnal's layers take them */
static void window(ox_ctx *c, const Onnx__NodeProto *n, int64_t kh, int64_t kw, ox_op *op)
{
    const Onnx__AttributeProto *ks = ints_attr(c, n, "kernel_shape", 2),
                               *st = ints_attr(c, n, "strides", 2), *pads = ints_attr(c, n, "pads", 4),
                               *dil = ints_attr(c, n, "dilations", 2), *ap = ox_attr(n, "auto_pad");
    if (ks && (ks->ints[0] != kh || ks->ints[1] != kw))
        ox_bad(c->g, n, "kernel_shape disagrees with the weight");
    if (kh != kw || kh < 1)
        ox_refuse(c->g, n, "kernel %lldx%lld; dnal implements square kernels", (long long)kh,
                  (long long)kw);
    if (ap && ap->has_s && !(ap->s.len == 6 && !memcmp(ap->s.data, "NOTSET", 6)) &&
        !(ap->s.len == 5 && !memcmp(ap->s.data, "VALID", 5)))
        ox_refuse(c->g, n, "auto_pad %.*s; dnal implements NOTSET (explicit pads) and VALID",
                  (int)ap->s.len, (const char *)ap->s.data);
    if (dil && (dil->ints[0] != 1 || dil->ints[1] != 1))
        ox_refuse(c->g, n, "dilations %lld,%lld; dnal implements 1", (long long)dil->ints[0],
                  (long long)dil->ints[1]);
    if (st && (st->ints[0] != st->ints[1] || st->ints[0] < 1))
        ox_refuse(c->g, n, "strides %lld,%lld; dnal implements equal strides", (long long)st->ints[0],
                  (long long)st->ints[1]);
    if (pads && (pads->ints[0] != pads->ints[1] || pads->ints[0] != pads->ints[2] ||
                 pads->ints[0] != pads->ints[3] || pads->ints[0] < 0 || pads->ints[0] >= kh))
        ox_refuse(c->g, n, "pads %lld,%lld,%lld,%lld; dnal implements one padding on every side, "
                  "below the kernel size", (long long)pads->ints[0], (long long)pads->ints[1],
                  (long long)pads->ints[2], (long long)pads->ints[3]);
    op->kernel = kh;
    op->stride = st ? st->ints[0] : 1;
    op->pad = pads ? pads->ints[0] : 0;
}

static int64_t window_out(ox_ctx *c, const Onnx__NodeProto *n, int64_t size, const ox_op *op)
{
    int64_t o = (size + 2 * op->pad - op->kernel) / op->stride + 1;
    if (size + 2 * op->pad < op->kernel || o < 1)
        ox_bad(c->g, n, "a %lld-pixel input is too small for kernel %lld", (long long)size,
               (long long)op->kernel);
    return o;
}

/* ------------------------------------------------------------- layers */

static void conv(ox_ctx *c, const Onnx__NodeProto *n)
{
    ox_graph *g = c->g;
    int x = ox_activation(c, n, 0, 0, NULL);
    const ox_const *w = ox_constant(c, n, 1, "the weight"), *b = ox_constant(c, n, 2, "the bias");
    const ox_value xv = g->values[x];
    int64_t group = ox_attr_int(g, n, "group", 1);
    if (!w || w->ndims != 4 || w->dtype != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        ox_refuse(g, n, "a 2-D convolution takes a 4-D FLOAT weight");
    if (group < 1 || w->dims[1] * group != xv.c || w->dims[0] % group || w->dims[0] < 1)
        ox_bad(g, n, "weight %lldx%lld in %lld groups does not fit %lld input channels",
               (long long)w->dims[0], (long long)w->dims[1], (long long)group, (long long)xv.c);
    if (group > 1 && group == xv.c && w->dims[0] != xv.c)
        ox_refuse(g, n, "a depthwise convolution with a channel multiplier (%lld to %lld "
                  "channels); dnal implements depthwise convolutions of as many outputs as inputs",
                  (long long)xv.c, (long long)w->dims[0]);
    if (b && (b->count != w->dims[0] || b->ndims != 1))
        ox_bad(g, n, "the bias has %lld values for %lld channels", (long long)b->count,
               (long long)w->dims[0]);
    ox_op *op = ox_op_new(g, OX_CONV, n);
    window(c, n, w->dims[2], w->dims[3], op);
    ox_set_name(g, op, n->input[1], n, c->i);
    op->n_in = 1;
    op->in[0] = x;
    op->out_c = w->dims[0];
    op->groups = group;
    op->w = ox_const_index(c, n, 1);
    op->bias = b != NULL;
    op->b = b ? ox_const_index(c, n, 2) : -1;
    int64_t oh = window_out(c, n, xv.h, op);
    op->out = ox_value_new(g, 4, op->out_c, oh, oh);
    ox_bind_value(c, n, 0, op->out, 0);
}

static void batchnorm(ox_ctx *c, const Onnx__NodeProto *n)
{
    ox_graph *g = c->g;
    int x = ox_activation(c, n, 0, 0, NULL);
    int64_t ch = g->values[x].c;
    static const char *what[4] = {"scale", "B", "mean", "var"};
    for (size_t k = 1; k <= 4; k++) {
        const ox_const *p = ox_constant(c, n, k, what[k - 1]);
        if (!p || p->ndims != 1 || p->count != ch || p->dtype != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
            ox_bad(g, n, "%s must be a FLOAT vector of %lld channels", what[k - 1], (long long)ch);
        if (k == 4)
            for (int64_t i = 0; i < ch; i++)
                if (ox_at(p, i) < 0)
                    ox_bad(g, n, "var[%lld] = %g is negative", (long long)i, ox_at(p, i));
    }
    double eps = attr_float(c, n, "epsilon", 1e-5), mom = attr_float(c, n, "momentum", 0.9);
    if (fabs(eps - 1e-5) > 1e-9)
        ox_refuse(g, n, "epsilon %g; dnal's batch norm uses 1e-5 (PyTorch's default)", eps);
    if (fabs(mom - 0.9) > 1e-6)
        ox_refuse(g, n, "momentum %g; dnal's batch norm uses 0.9 (PyTorch's momentum=0.1)", mom);
    if (ox_attr_int(g, n, "training_mode", 0) != 0)
        ox_refuse(g, n, "training_mode=1; export the model in eval mode (model.eval(), "
                  "training=torch.onnx.TrainingMode.PRESERVE)");
    for (size_t k = 1; k < n->n_output; k++)
        if (n->output[k][0])
            ox_refuse(g, n, "output %s (running statistics of training mode) is not supported",
                      n->output[k]);
    ox_op *op = ox_op_new(g, OX_BN, n);
    ox_set_name(g, op, n->input[1], n, c->i);
    op->n_in = 1;
    op->in[0] = x;
    op->scale = ox_const_index(c, n, 1);
    op->shift = ox_const_index(c, n, 2);
    op->mean = ox_const_index(c, n, 3);
    op->var = ox_const_index(c, n, 4);
    const ox_value xv = g->values[x];
    op->out = ox_value_new(g, 4, xv.c, xv.h, xv.w);
    ox_bind_value(c, n, 0, op->out, 0);
}

static void unary(ox_ctx *c, const Onnx__NodeProto *n, ox_kind kind)
{
    ox_graph *g = c->g;
    int flat = 0, x = ox_activation(c, n, 0, kind == OX_RELU || kind == OX_RELU6, &flat);
    const ox_value xv = g->values[x];
    if (xv.ndims != 4 && kind != OX_RELU && kind != OX_RELU6)
        ox_refuse(g, n, "dnal pools N x C x H x W tensors only");
    ox_op *op = ox_op_new(g, kind, n);
    ox_set_name(g, op, NULL, n, c->i);
    op->n_in = 1;
    op->in[0] = x;
    int64_t oh = xv.h;
    if (kind == OX_MAXPOOL || kind == OX_AVGPOOL) {
        const Onnx__AttributeProto *ks = ox_attr(n, "kernel_shape");
        if (!ks || ks->n_ints != 2)
            ox_bad(g, n, "kernel_shape must hold 2 entries");
        window(c, n, ks->ints[0], ks->ints[1], op);
        if (ox_attr_int(g, n, "ceil_mode", 0) != 0)
            ox_refuse(g, n, "ceil_mode=1; dnal implements ceil_mode=0");
        if (ox_attr_int(g, n, "storage_order", 0) != 0)
            ox_refuse(g, n, "storage_order=1 is not supported");
        if (kind == OX_AVGPOOL && op->pad > 0 && ox_attr_int(g, n, "count_include_pad", 0) == 0)
            ox_refuse(g, n, "count_include_pad=0 with padding; dnal's average counts the padding "
                      "(PyTorch's default, count_include_pad=True)");
        for (size_t k = 1; k < n->n_output; k++)
            if (n->output[k][0])
                ox_refuse(g, n, "output %s (the indices) is not supported", n->output[k]);
        oh = window_out(c, n, xv.h, op);
    } else if (kind == OX_GAP) {
        oh = 1;
    }
    op->out = ox_value_new(g, xv.ndims, xv.c, oh, oh);
    ox_bind_value(c, n, 0, op->out, flat);
}

static void clip(ox_ctx *c, const Onnx__NodeProto *n)
{
    const ox_const *lo = ox_constant(c, n, 1, "min"), *hi = ox_constant(c, n, 2, "max");
    if ((lo && lo->count != 1) || (hi && hi->count != 1))
        ox_bad(c->g, n, "min and max must be scalars");
    double a = lo ? ox_at(lo, 0) : -INFINITY, b = hi ? ox_at(hi, 0) : INFINITY;
    if (a == 0 && b == 6)
        unary(c, n, OX_RELU6);
    else if (a == 0 && b == INFINITY)
        unary(c, n, OX_RELU);
    else
        ox_refuse(c->g, n, "Clip(min %g, max %g); dnal implements Clip(0, 6) as ReLU6 and "
                  "Clip(0) as ReLU", a, b);
}

/* the constant vector of a MatMul's Add (its bias), or NULL */
static const Onnx__NodeProto *matmul_bias(ox_ctx *c, const Onnx__NodeProto *n, int64_t out,
                                          size_t *which)
{
    const Onnx__NodeProto *user = NULL;
    int users = 0;
    for (size_t j = c->i + 1; j < c->gr->n_node; j++) {
        const Onnx__NodeProto *m = c->gr->node[j];
        for (size_t k = 0; k < m->n_input; k++)
            if (!strcmp(m->input[k], n->output[0])) {
                users++;
                user = m;
                *which = j;
            }
    }
    for (size_t k = 0; k < c->gr->n_output; k++)
        users += c->gr->output[k]->name && !strcmp(c->gr->output[k]->name, n->output[0]);
    /* the one use may be a graph output (no node), and a later node is not
     * checked yet: its operator may be missing */
    if (users != 1 || !user || !user->op_type || strcmp(user->op_type, "Add") || user->n_input != 2)
        return NULL;
    const char *other = strcmp(user->input[0], n->output[0]) ? user->input[0] : user->input[1];
    ox_bind *b = ox_find(c->g, other);
    if (!b || b->kind != OX_CONST || c->g->consts[b->cst].count != out)
        return NULL;
    return user;
}

static void linear(ox_ctx *c, const Onnx__NodeProto *n, int gemm)
{
    ox_graph *g = c->g;
    int flat = 0, x = ox_activation(c, n, 0, 1, &flat);
    const ox_value xv = g->values[x];
    if (xv.ndims == 4 && !flat)
        ox_refuse(g, n, "input %s is N x C x H x W; dnal's %s reads a Flatten (or a Reshape to N x "
                  "C*H*W)", n->input[0], n->op_type);
    int64_t in = xv.c * xv.h * xv.w;
    const ox_const *w = ox_constant(c, n, 1, "the weight");
    int transb = gemm ? (int)ox_attr_int(g, n, "transB", 0) : 0;
    if (gemm && (ox_attr_int(g, n, "transA", 0) != 0 || attr_float(c, n, "alpha", 1) != 1 ||
                 attr_float(c, n, "beta", 1) != 1))
        ox_refuse(g, n, "transA, alpha or beta other than 0, 1, 1");
    if (!w || w->ndims != 2 || w->dtype != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ||
        w->dims[transb ? 1 : 0] != in)
        ox_bad(g, n, "the weight does not take %lld input features", (long long)in);
    int64_t out = w->dims[transb ? 0 : 1];
    ox_op *op = ox_op_new(g, OX_LINEAR, n);
    ox_set_name(g, op, n->input[1], n, c->i);
    op->n_in = 1;
    op->in[0] = x;
    op->out_c = out;
    op->w = ox_const_index(c, n, 1);
    op->w_transposed = !transb;
    const Onnx__NodeProto *add = NULL;
    size_t at = 0;
    if (gemm && n->n_input > 2 && n->input[2][0]) {
        const ox_const *b = ox_constant(c, n, 2, "the bias");
        if (b->count != out)
            ox_bad(g, n, "the bias has %lld values for %lld outputs", (long long)b->count, (long long)out);
        op->b = ox_const_index(c, n, 2);
    } else if (!gemm && (add = matmul_bias(c, n, out, &at))) {
        op->b = ox_find(g, strcmp(add->input[0], n->output[0]) ? add->input[0] : add->input[1])->cst;
        c->absorbed[at] = 1;
    }
    op->bias = op->b >= 0;
    op->out = ox_value_new(g, 2, out, 1, 1);
    ox_bind_value(c, n, 0, op->out, 0);
    if (add)
        ox_bind_value(c, add, 0, op->out, 0);
}

static void reshape(ox_ctx *c, const Onnx__NodeProto *n, int is_flatten)
{
    ox_graph *g = c->g;
    int x = ox_activation(c, n, 0, 1, NULL);
    const ox_value xv = g->values[x];
    if (is_flatten) {
        if (ox_attr_int(g, n, "axis", 1) != 1)
            ox_refuse(g, n, "axis %lld; dnal flattens from axis 1", (long long)ox_attr_int(g, n, "axis", 1));
    } else {
        const ox_const *s = ox_constant(c, n, 1, "the shape");
        int64_t feat = xv.c * xv.h * xv.w;
        double s0 = s && s->count == 2 ? ox_at(s, 0) : -2, s1 = s && s->count == 2 ? ox_at(s, 1) : -2;
        int batch_ok = s0 == 0 || (s0 == -1 && s1 == (double)feat) || (g->batch > 0 && s0 == (double)g->batch);
        if (!batch_ok || (s1 != -1 && s1 != (double)feat) || ox_attr_int(g, n, "allowzero", 0))
            ox_refuse(g, n, "dnal implements a Reshape to (N, C*H*W) only (torch.flatten(x, 1))");
    }
    ox_bind_value(c, n, 0, x, xv.ndims == 4);
}

/* ------------------------------------------------------------- the graph */

static void convert_node(ox_ctx *c, const Onnx__NodeProto *n)
{
    const char *op = n->op_type;
    if (!strcmp(op, "Conv"))
        conv(c, n);
    else if (!strcmp(op, "BatchNormalization"))
        batchnorm(c, n);
    else if (!strcmp(op, "Relu"))
        unary(c, n, OX_RELU);
    else if (!strcmp(op, "Clip"))
        clip(c, n);
    else if (!strcmp(op, "MaxPool"))
        unary(c, n, OX_MAXPOOL);
    else if (!strcmp(op, "AveragePool"))
        unary(c, n, OX_AVGPOOL);
    else if (!strcmp(op, "GlobalAveragePool"))
        unary(c, n, OX_GAP);
    else if (!strcmp(op, "Add"))
        ox_add(c, n);
    else if (!strcmp(op, "Gemm") || !strcmp(op, "MatMul"))
        linear(c, n, !strcmp(op, "Gemm"));
    else if (!strcmp(op, "Flatten") || !strcmp(op, "Reshape"))
        reshape(c, n, !strcmp(op, "Flatten"));
    else if (!strcmp(op, "Identity"))
        ox_alias(c, n, 0);
    else if (!strcmp(op, "Dropout")) {
        const ox_const *t = ox_constant(c, n, 2, "training_mode");
        if (t && t->count == 1 && ox_at(t, 0) != 0)
            ox_refuse(c->g, n, "training_mode=true; export in eval mode");
        ox_alias(c, n, 0);
        if (n->n_output > 1 && n->output[1][0]) /* the mask: nothing may read it */
            ox_bind_new(c->g, n, n->output[1])->kind = OX_NONE;
    } else if (!strcmp(op, "Pad"))
        ox_pad(c, n);
    else if (!strcmp(op, "Gather"))
        ox_gather(c, n);
    else if (!strcmp(op, "Slice"))
        ox_slice(c, n);
    else if (!strcmp(op, "Shape"))
        ox_refuse(c->g, n, "a Shape of the activations is not supported (PyTorch's x.view(x.size(0), "
                  "-1) makes one: torch.flatten(x, 1) exports a Flatten); dnal imports " OX_SUPPORTED);
    else
        ox_refuse(c->g, n, "operator %s is not supported; dnal imports " OX_SUPPORTED, op);
}

void ox_convert(ox_graph *g)
{
    const Onnx__GraphProto *gr = g->model->graph;
    ox_ctx c = {.g = g, .gr = gr, .absorbed = dnal_calloc(gr->n_node + 1)};
    for (c.i = 0; c.i < gr->n_node; c.i++) {
        const Onnx__NodeProto *n = gr->node[c.i];
        if (!n->op_type || !*n->op_type)
            ox_bad(g, n, "a node without an operator");
        if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx"))
            ox_refuse(g, n, "operator domain %s; dnal imports the default domain: " OX_SUPPORTED,
                      n->domain);
        if (n->n_output < 1)
            ox_bad(g, n, "a node without outputs");
        if (c.absorbed[c.i])
            continue;
        for (size_t k = 0; k < n->n_input; k++) /* every input made before */
            if (n->input[k][0] && !ox_find(g, n->input[k]))
                ox_bad(g, n, "input %s is made by no earlier node or initializer (the nodes must "
                       "be in topological order)", n->input[k]);
        if (!strcmp(n->op_type, "Identity") || !ox_fold(g, n))
            convert_node(&c, n);
    }
    free(c.absorbed);
}
