/* Each node of an ONNX graph into dnal's operations (one layer each), in the
 * graph's order, every input, attribute and weight shape checked first.
 * Identity, Dropout, Flatten and Reshape only rename a value; Pad and
 * Gather on channels, and the Slice of x[:, :, ::s, ::s], place channels
 * (the zero-padded ResNet shortcut, dnal's compact residual sums), which
 * become a scatter-add into the Add that reads them (or into zeros). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

typedef struct ox_ctx {
    ox_graph *g;
    const Onnx__GraphProto *gr;
    size_t i;        /* the node being converted */
    char *absorbed;  /* nodes done by an earlier one (MatMul's Add) */
} ox_ctx;

/* ------------------------------------------------------------- names */

static int name_taken(const ox_graph *g, const ox_op *self, const char *name)
{
    for (int i = 0; i < g->n_ops; i++)
        if (&g->ops[i] != self && !strcmp(g->ops[i].name, name))
            return 1;
    return 0;
}

/* The layer's name: a weight's name without ".weight" (PyTorch's module
 * names, as "layer1.0.conv1"), else the node's name made HDF5-safe, else
 * OP_INDEX; unique among the layers. */
static void set_name(ox_graph *g, ox_op *op, const char *weight, const Onnx__NodeProto *n, size_t i)
{
    char base[64] = "";
    size_t wl = weight ? strlen(weight) : 0;
    if (wl > 7 && !strcmp(weight + wl - 7, ".weight") && wl - 7 < 56)
        snprintf(base, sizeof base, "%.*s", (int)(wl - 7), weight);
    else if (n && n->name && *n->name) {
        const char *s = n->name;
        while (*s == '/')
            s++;
        size_t len = strlen(s), skip = len > 55 ? len - 55 : 0;
        snprintf(base, sizeof base, "%s", s + skip);
    }
    if (!*base)
        snprintf(base, sizeof base, "%s_%zu", n ? n->op_type : "op", i);
    for (char *p = base; *p; p++)
        if (!(('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') || ('0' <= *p && *p <= '9') ||
              *p == '_' || *p == '-' || (*p == '.' && p != base)))
            *p = *p == '/' || *p == ':' ? '.' : '_';
    snprintf(op->name, sizeof op->name, "%s", base);
    for (int k = 2; name_taken(g, op, op->name) || !*op->name; k++)
        snprintf(op->name, sizeof op->name, "%.50s.%d", base, k);
}

/* ------------------------------------------------------------- inputs */

static ox_bind input_raw(ox_ctx *c, const Onnx__NodeProto *n, size_t k)
{
    if (k >= n->n_input || !n->input[k][0])
        ox_bad(c->g, n, "input %zu is missing", k);
    ox_bind *b = ox_find(c->g, n->input[k]);
    if (!b)
        ox_bad(c->g, n, "input %s is made by no earlier node or initializer (the nodes must be "
               "in topological order)", n->input[k]);
    if (b->kind == OX_NONE)
        ox_refuse(c->g, n, "input %s is a Dropout's mask, which dnal does not compute", n->input[k]);
    return *b;
}

/* input k, its pending Slices (x[:, :, ::s, ::s] comes as one Slice per
 * axis) done as a 1x1 average pool of stride s */
static ox_bind input(ox_ctx *c, const Onnx__NodeProto *n, size_t k)
{
    ox_bind b = input_raw(c, n, k);
    if (b.kind != OX_VALUE || (b.step_h <= 1 && b.step_w <= 1))
        return b;
    if (b.step_h != b.step_w)
        ox_refuse(c->g, n, "input %s is sliced with steps %lld on H and %lld on W; dnal subsamples "
                  "both alike", n->input[k], (long long)b.step_h, (long long)b.step_w);
    if (b.materialized < 0) {
        ox_graph *g = c->g;
        const ox_value xv = g->values[b.value];
        ox_op *op = ox_op_new(g, OX_AVGPOOL, n);
        set_name(g, op, NULL, NULL, c->i);
        snprintf(op->name, sizeof op->name, "%.50s.sub", n->input[k][0] == '/' ? n->input[k] + 1 : n->input[k]);
        for (char *p = op->name; *p; p++)
            *p = *p == '/' || *p == ':' ? '.' : *p;
        for (int j = 2; j < 100 && (op->name[0] == '.' || name_taken(g, op, op->name)); j++)
            snprintf(op->name, sizeof op->name, "Slice_%zu.%d", c->i, j);
        op->n_in = 1;
        op->in[0] = b.value;
        op->kernel = 1;
        op->stride = b.step_h;
        int64_t oh = (xv.h - 1) / b.step_h + 1;
        op->out = ox_value_new(g, 4, xv.c, oh, oh);
        ox_find(g, n->input[k])->materialized = op->out;
        b.materialized = op->out;
    }
    return (ox_bind){.name = b.name, .kind = OX_VALUE, .value = b.materialized, .materialized = -1};
}

static const ox_const *constant(ox_ctx *c, const Onnx__NodeProto *n, size_t k, const char *what)
{
    if (k >= n->n_input || !n->input[k][0])
        return NULL;
    ox_bind b = input(c, n, k);
    if (b.kind != OX_CONST)
        ox_refuse(c->g, n, "%s (%s) is computed by the graph; dnal needs it constant (an "
                  "initializer)", what, n->input[k]);
    return &c->g->consts[b.cst];
}

static int const_index(ox_ctx *c, const Onnx__NodeProto *n, size_t k)
{
    return input(c, n, k).cst;
}

/* a PLACED binding as its own tensor: a scatter-add into zeros */
static int materialize(ox_ctx *c, const Onnx__NodeProto *n, const char *name)
{
    ox_graph *g = c->g;
    ox_bind *b = ox_find(g, name);
    if (b->materialized >= 0)
        return b->materialized;
    ox_bind copy = *b;
    ox_op *op = ox_op_new(g, OX_PLACE, n);
    set_name(g, op, NULL, n, c->i);
    op->n_in = 1;
    op->in[0] = copy.value;
    op->out_c = copy.out_c;
    op->idx = dnal_alloc(sizeof *op->idx * (size_t)(g->values[copy.value].c + 1));
    memcpy(op->idx, copy.idx, sizeof *op->idx * (size_t)g->values[copy.value].c);
    const ox_value *v = &g->values[copy.value];
    op->out = ox_value_new(g, 4, copy.out_c, v->h, v->w);
    ox_find(g, name)->materialized = op->out;
    return op->out;
}

/* input k as a dnal tensor: 4-D (flat: N x C*H*W allowed) or 2-D */
static int activation(ox_ctx *c, const Onnx__NodeProto *n, size_t k, int allow_flat, int *flat)
{
    ox_bind b = input(c, n, k);
    if (b.kind == OX_CONST)
        ox_refuse(c->g, n, "input %s is a constant where dnal needs an activation", n->input[k]);
    int v = b.kind == OX_PLACED ? materialize(c, n, n->input[k]) : b.value;
    if (b.flat && !allow_flat)
        ox_refuse(c->g, n, "input %s is flattened (N x C*H*W); dnal runs this operator on N x C x "
                  "H x W tensors or on a Gemm's output", n->input[k]);
    if (flat)
        *flat = b.kind == OX_VALUE && b.flat;
    return v;
}

static void bind_value(ox_ctx *c, const Onnx__NodeProto *n, size_t k, int value, int flat)
{
    if (k >= n->n_output)
        ox_bad(c->g, n, "output %zu is missing", k);
    ox_bind *b = ox_bind_new(c->g, n, n->output[k]);
    b->kind = OX_VALUE;
    b->value = value;
    b->flat = flat;
}

/* output 0 names what input 0 names (Identity, Dropout, Flatten, ...) */
static void alias(ox_ctx *c, const Onnx__NodeProto *n, int flat)
{
    ox_bind in = input_raw(c, n, 0);
    if (n->n_output < 1)
        ox_bad(c->g, n, "no output");
    ox_bind *b = ox_bind_new(c->g, n, n->output[0]);
    int64_t *idx = NULL;
    if (in.kind == OX_PLACED) {
        size_t len = (size_t)c->g->values[in.value].c;
        idx = dnal_alloc(sizeof *idx * (len + 1));
        memcpy(idx, in.idx, sizeof *idx * len);
    }
    *b = in;
    b->name = n->output[0];
    b->idx = idx;
    b->materialized = -1;
    b->flat |= flat;
}

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
    int x = activation(c, n, 0, 0, NULL);
    const ox_const *w = constant(c, n, 1, "the weight"), *b = constant(c, n, 2, "the bias");
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
    set_name(g, op, n->input[1], n, c->i);
    op->n_in = 1;
    op->in[0] = x;
    op->out_c = w->dims[0];
    op->groups = group;
    op->w = const_index(c, n, 1);
    op->bias = b != NULL;
    op->b = b ? const_index(c, n, 2) : -1;
    int64_t oh = window_out(c, n, xv.h, op);
    op->out = ox_value_new(g, 4, op->out_c, oh, oh);
    bind_value(c, n, 0, op->out, 0);
}

static void batchnorm(ox_ctx *c, const Onnx__NodeProto *n)
{
    ox_graph *g = c->g;
    int x = activation(c, n, 0, 0, NULL);
    int64_t ch = g->values[x].c;
    static const char *what[4] = {"scale", "B", "mean", "var"};
    for (size_t k = 1; k <= 4; k++) {
        const ox_const *p = constant(c, n, k, what[k - 1]);
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
    set_name(g, op, n->input[1], n, c->i);
    op->n_in = 1;
    op->in[0] = x;
    op->scale = const_index(c, n, 1);
    op->shift = const_index(c, n, 2);
    op->mean = const_index(c, n, 3);
    op->var = const_index(c, n, 4);
    const ox_value xv = g->values[x];
    op->out = ox_value_new(g, 4, xv.c, xv.h, xv.w);
    bind_value(c, n, 0, op->out, 0);
}

static void unary(ox_ctx *c, const Onnx__NodeProto *n, ox_kind kind)
{
    ox_graph *g = c->g;
    int flat = 0, x = activation(c, n, 0, kind == OX_RELU || kind == OX_RELU6, &flat);
    const ox_value xv = g->values[x];
    if (xv.ndims != 4 && kind != OX_RELU && kind != OX_RELU6)
        ox_refuse(g, n, "dnal pools N x C x H x W tensors only");
    ox_op *op = ox_op_new(g, kind, n);
    set_name(g, op, NULL, n, c->i);
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
    bind_value(c, n, 0, op->out, flat);
}

static void clip(ox_ctx *c, const Onnx__NodeProto *n)
{
    const ox_const *lo = constant(c, n, 1, "min"), *hi = constant(c, n, 2, "max");
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
        users += !strcmp(c->gr->output[k]->name, n->output[0]);
    if (users != 1 || strcmp(user->op_type, "Add") || user->n_input != 2)
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
    int flat = 0, x = activation(c, n, 0, 1, &flat);
    const ox_value xv = g->values[x];
    if (xv.ndims == 4 && !flat)
        ox_refuse(g, n, "input %s is N x C x H x W; dnal's %s reads a Flatten (or a Reshape to N x "
                  "C*H*W)", n->input[0], n->op_type);
    int64_t in = xv.c * xv.h * xv.w;
    const ox_const *w = constant(c, n, 1, "the weight");
    int transb = gemm ? (int)ox_attr_int(g, n, "transB", 0) : 0;
    if (gemm && (ox_attr_int(g, n, "transA", 0) != 0 || attr_float(c, n, "alpha", 1) != 1 ||
                 attr_float(c, n, "beta", 1) != 1))
        ox_refuse(g, n, "transA, alpha or beta other than 0, 1, 1");
    if (!w || w->ndims != 2 || w->dtype != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ||
        w->dims[transb ? 1 : 0] != in)
        ox_bad(g, n, "the weight does not take %lld input features", (long long)in);
    int64_t out = w->dims[transb ? 0 : 1];
    ox_op *op = ox_op_new(g, OX_LINEAR, n);
    set_name(g, op, n->input[1], n, c->i);
    op->n_in = 1;
    op->in[0] = x;
    op->out_c = out;
    op->w = const_index(c, n, 1);
    op->w_transposed = !transb;
    const Onnx__NodeProto *add = NULL;
    size_t at = 0;
    if (gemm && n->n_input > 2 && n->input[2][0]) {
        const ox_const *b = constant(c, n, 2, "the bias");
        if (b->count != out)
            ox_bad(g, n, "the bias has %lld values for %lld outputs", (long long)b->count, (long long)out);
        op->b = const_index(c, n, 2);
    } else if (!gemm && (add = matmul_bias(c, n, out, &at))) {
        op->b = ox_find(g, strcmp(add->input[0], n->output[0]) ? add->input[0] : add->input[1])->cst;
        c->absorbed[at] = 1;
    }
    op->bias = op->b >= 0;
    op->out = ox_value_new(g, 2, out, 1, 1);
    bind_value(c, n, 0, op->out, 0);
    if (add)
        bind_value(c, add, 0, op->out, 0);
}

/* ------------------------------------------------------------- placement */

/* a binding's placement: value channel k at idx[k] of out_c */
static void placement(ox_graph *g, const ox_bind *b, int64_t **idx, int64_t *out_c)
{
    int64_t n = g->values[b->value].c;
    *idx = dnal_alloc(sizeof **idx * (size_t)(n + 1));
    for (int64_t k = 0; k < n; k++)
        (*idx)[k] = b->kind == OX_PLACED ? b->idx[k] : k;
    *out_c = b->kind == OX_PLACED ? b->out_c : n;
}

static void bind_placed(ox_ctx *c, const Onnx__NodeProto *n, int value, int64_t *idx, int64_t out_c)
{
    ox_graph *g = c->g;
    int identity = out_c == g->values[value].c;
    for (int64_t k = 0; identity && k < out_c; k++)
        identity = idx[k] == k;
    if (identity) {
        free(idx);
        bind_value(c, n, 0, value, 0);
        return;
    }
    ox_bind *b = ox_bind_new(g, n, n->output[0]);
    b->kind = OX_PLACED;
    b->value = value;
    b->idx = idx;
    b->out_c = out_c;
}

static void pad(ox_ctx *c, const Onnx__NodeProto *n)
{
    ox_graph *g = c->g;
    ox_bind in = input(c, n, 0);
    const Onnx__AttributeProto *mode = ox_attr(n, "mode");
    const ox_const *pads = constant(c, n, 1, "pads"), *value = constant(c, n, 2, "constant_value");
    if (in.kind == OX_CONST || in.flat || g->values[in.value].ndims != 4)
        ox_refuse(g, n, "dnal pads the channels of N x C x H x W activations only");
    if (mode && mode->has_s && !(mode->s.len == 8 && !memcmp(mode->s.data, "constant", 8)))
        ox_refuse(g, n, "mode %.*s; dnal implements constant", (int)mode->s.len,
                  (const char *)mode->s.data);
    if (!pads || pads->count != 8 || (value && (value->count != 1 || ox_at(value, 0) != 0)))
        ox_refuse(g, n, "dnal implements zero padding given by 8 constant pads");
    for (int k = 0; k < 8; k++)
        if ((k != 1 && k != 5 && ox_at(pads, k) != 0) || ox_at(pads, k) < 0)
            ox_refuse(g, n, "pads entry %d is %g; dnal pads channels only (zeros before and after)",
                      k, ox_at(pads, k));
    int64_t *idx, out_c, before = (int64_t)ox_at(pads, 1), after = (int64_t)ox_at(pads, 5);
    if (before > (1 << 24) || after > (1 << 24))
        ox_bad(g, n, "pads of more than 2^24 channels");
    placement(g, &in, &idx, &out_c);
    for (int64_t k = 0; k < g->values[in.value].c; k++)
        idx[k] += before;
    bind_placed(c, n, in.value, idx, out_c + before + after);
}

static void gather(ox_ctx *c, const Onnx__NodeProto *n)
{
    ox_graph *g = c->g;
    ox_bind in = input(c, n, 0);
    const ox_const *ind = constant(c, n, 1, "the indices");
    if (in.kind == OX_CONST || in.flat || g->values[in.value].ndims != 4 ||
        ox_attr_int(g, n, "axis", 0) != 1 || !ind || ind->ndims != 1)
        ox_refuse(g, n, "dnal implements a Gather of constant 1-D indices along the channels of an "
                  "N x C x H x W activation");
    int64_t *idx, out_c, nv = g->values[in.value].c, m = ind->count;
    placement(g, &in, &idx, &out_c);
    int64_t *to = dnal_alloc(sizeof *to * (size_t)(nv + 1));
    for (int64_t k = 0; k < nv; k++)
        to[k] = -1;
    for (int64_t j = 0; j < m; j++) {
        int64_t s = (int64_t)ox_at(ind, j);
        if (s < 0)
            s += out_c;
        if (s < 0 || s >= out_c)
            ox_bad(g, n, "index %g is out of range for %lld channels", ox_at(ind, j), (long long)out_c);
        for (int64_t k = 0; k < nv; k++)
            if (idx[k] == s) {
                if (to[k] >= 0)
                    ox_refuse(g, n, "channel %lld is gathered twice; dnal places each channel once",
                              (long long)s);
                to[k] = j;
            }
    }
    for (int64_t k = 0; k < nv; k++)
        if (to[k] < 0)
            ox_refuse(g, n, "channel %lld is dropped; dnal's Gather only places channels (each "
                      "once) among zeros", (long long)idx[k]);
    free(idx);
    bind_placed(c, n, in.value, to, m);
}

static void slice(ox_ctx *c, const Onnx__NodeProto *n)
{
    ox_graph *g = c->g;
    ox_bind in = input_raw(c, n, 0);
    if (in.kind != OX_VALUE || in.flat || g->values[in.value].ndims != 4)
        ox_refuse(g, n, "dnal implements a Slice of N x C x H x W activations only");
    const ox_value xv = g->values[in.value];
    const ox_const *starts = constant(c, n, 1, "starts"), *ends = constant(c, n, 2, "ends"),
                   *axes = constant(c, n, 3, "axes"), *steps = constant(c, n, 4, "steps");
    if (!starts || !ends || starts->count != ends->count || (axes && axes->count != starts->count) ||
        (steps && steps->count != starts->count))
        ox_bad(g, n, "starts, ends, axes and steps must be constants of one length");
    int64_t step[4] = {1, 1, 1, 1}, dims[4] = {INT64_MAX, xv.c, xv.h, xv.w};
    for (int64_t i = 0; i < starts->count; i++) {
        int64_t ax = axes ? (int64_t)ox_at(axes, i) : i;
        ax += ax < 0 ? 4 : 0;
        if (ax < 0 || ax > 3)
            ox_bad(g, n, "axis out of range");
        double s = ox_at(starts, i), e = ox_at(ends, i), k = steps ? ox_at(steps, i) : 1;
        if (s != 0 || e < (double)dims[ax] || k < 1 || k > 4096 || (ax < 2 && k != 1))
            ox_refuse(g, n, "dnal implements a Slice of every element with a step on H and W "
                      "(x[:, :, ::s, ::s])");
        step[ax] = (int64_t)k;
    }
    alias(c, n, 0); /* the steps wait for the reader (input() above) */
    ox_bind *b = ox_find(g, n->output[0]);
    b->step_h = (in.step_h > 1 ? in.step_h : 1) * step[2];
    b->step_w = (in.step_w > 1 ? in.step_w : 1) * step[3];
}

static void add(ox_ctx *c, const Onnx__NodeProto *n)
{
    ox_graph *g = c->g;
    ox_bind a = input(c, n, 0), b = input(c, n, 1);
    if (a.kind == OX_CONST || b.kind == OX_CONST)
        ox_refuse(g, n, "an Add of a constant; dnal adds constants only as a MatMul's bias");
    if (a.kind == OX_PLACED && b.kind == OX_PLACED)
        b = (ox_bind){.kind = OX_VALUE, .value = materialize(c, n, n->input[1])};
    if (a.flat || b.flat || g->values[a.value].ndims != 4 || g->values[b.value].ndims != 4)
        ox_refuse(g, n, "dnal adds N x C x H x W activations only");
    ox_bind *placed = a.kind == OX_PLACED ? &a : b.kind == OX_PLACED ? &b : NULL;
    const ox_bind *base = placed == &a ? &b : &a;
    const ox_value av = g->values[placed ? placed->value : a.value], bv = g->values[base->value];
    int64_t ac = placed ? placed->out_c : av.c;
    if (ac != bv.c || av.h != bv.h || av.w != bv.w)
        ox_bad(g, n, "inputs of shapes %lldx%lldx%lld and %lldx%lldx%lld (dnal does not broadcast)",
               (long long)ac, (long long)av.h, (long long)av.w, (long long)bv.c, (long long)bv.h,
               (long long)bv.w);
    ox_op *op = ox_op_new(g, placed ? OX_PLACE : OX_ADD, n);
    set_name(g, op, NULL, n, c->i);
    op->n_in = 2;
    op->in[0] = placed ? placed->value : a.value;
    op->in[1] = placed ? base->value : b.value;
    if (placed) {
        op->out_c = placed->out_c;
        op->idx = dnal_alloc(sizeof *op->idx * (size_t)(av.c + 1));
        memcpy(op->idx, placed->idx, sizeof *op->idx * (size_t)av.c);
    }
    op->out = ox_value_new(g, 4, bv.c, bv.h, bv.w);
    bind_value(c, n, 0, op->out, 0);
}

static void reshape(ox_ctx *c, const Onnx__NodeProto *n, int is_flatten)
{
    ox_graph *g = c->g;
    int x = activation(c, n, 0, 1, NULL);
    const ox_value xv = g->values[x];
    if (is_flatten) {
        if (ox_attr_int(g, n, "axis", 1) != 1)
            ox_refuse(g, n, "axis %lld; dnal flattens from axis 1", (long long)ox_attr_int(g, n, "axis", 1));
    } else {
        const ox_const *s = constant(c, n, 1, "the shape");
        int64_t feat = xv.c * xv.h * xv.w;
        double s0 = s && s->count == 2 ? ox_at(s, 0) : -2, s1 = s && s->count == 2 ? ox_at(s, 1) : -2;
        int batch_ok = s0 == 0 || (s0 == -1 && s1 == (double)feat) || (g->batch > 0 && s0 == (double)g->batch);
        if (!batch_ok || (s1 != -1 && s1 != (double)feat) || ox_attr_int(g, n, "allowzero", 0))
            ox_refuse(g, n, "dnal implements a Reshape to (N, C*H*W) only (torch.flatten(x, 1))");
    }
    bind_value(c, n, 0, x, xv.ndims == 4);
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
        add(c, n);
    else if (!strcmp(op, "Gemm") || !strcmp(op, "MatMul"))
        linear(c, n, !strcmp(op, "Gemm"));
    else if (!strcmp(op, "Flatten") || !strcmp(op, "Reshape"))
        reshape(c, n, !strcmp(op, "Flatten"));
    else if (!strcmp(op, "Identity"))
        alias(c, n, 0);
    else if (!strcmp(op, "Dropout")) {
        const ox_const *t = constant(c, n, 2, "training_mode");
        if (t && t->count == 1 && ox_at(t, 0) != 0)
            ox_refuse(c->g, n, "training_mode=true; export in eval mode");
        alias(c, n, 0);
        if (n->n_output > 1 && n->output[1][0]) /* the mask: nothing may read it */
            ox_bind_new(c->g, n, n->output[1])->kind = OX_NONE;
    } else if (!strcmp(op, "Pad"))
        pad(c, n);
    else if (!strcmp(op, "Gather"))
        gather(c, n);
    else if (!strcmp(op, "Slice"))
        slice(c, n);
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
