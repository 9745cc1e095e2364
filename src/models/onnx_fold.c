/* Constants folded at import: PyTorch's exporter leaves shape arithmetic in
 * the graph (F.pad's pads are a chain of ConstantOfShape, Concat, Reshape,
 * Slice, Transpose, Reshape and Cast over constants, and with constant
 * folding off Shape, Gather, Mul and Sub too), so every node of these
 * operators whose inputs are all constants becomes a constant. Sizes are
 * limited (2^24 values): these are shapes and pads, not weights. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

enum { FOLD_MAX = 1 << 24 };

const Onnx__AttributeProto *ox_attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name))
            return n->attribute[i];
    return NULL;
}

int64_t ox_attr_int(const ox_graph *g, const Onnx__NodeProto *n, const char *name, int64_t dflt)
{
    const Onnx__AttributeProto *a = ox_attr(n, name);
    if (!a)
        return dflt;
    if (!a->has_i)
        ox_bad(g, n, "attribute %s is not an integer", name);
    return a->i;
}

/* input k as a constant, or NULL (absent, or not a constant) */
static const ox_const *cinput(ox_graph *g, const Onnx__NodeProto *n, size_t k)
{
    if (k >= n->n_input || !n->input[k][0])
        return NULL;
    ox_bind *b = ox_find(g, n->input[k]);
    if (!b)
        ox_bad(g, n, "input %s is made by no earlier node or initializer", n->input[k]);
    return b->kind == OX_CONST ? &g->consts[b->cst] : NULL;
}

static void strides(const int64_t *dims, int nd, int64_t *st)
{
    int64_t s = 1;
    for (int d = nd - 1; d >= 0; d--) {
        st[d] = s;
        s *= dims[d];
    }
}

static int64_t normal_axis(ox_graph *g, const Onnx__NodeProto *n, double a, int rank)
{
    if (!(a >= -rank && a < rank)) /* before the cast: a may be any double */
        ox_bad(g, n, "axis %g is out of range for rank %d", a, rank);
    int64_t ax = (int64_t)a;
    return ax < 0 ? ax + rank : ax;
}

/* a new constant of dims into the output, the index of its data returned */
static ox_const *emit(ox_graph *g, const Onnx__NodeProto *n, int dtype, int nd, const int64_t *dims)
{
    int64_t count = 1;
    if (nd > OX_MAX_DIMS)
        ox_refuse(g, n, "folding makes rank %d", nd);
    for (int d = 0; d < nd; d++) {
        if (dims[d] < 0 || (dims[d] > 0 && count > FOLD_MAX / dims[d]))
            ox_refuse(g, n, "folding makes a constant of more than %d values", FOLD_MAX);
        count *= dims[d];
    }
    if (n->n_output < 1)
        ox_bad(g, n, "no output");
    int c = ox_const_new(g, dtype, nd, dims);
    ox_bind *b = ox_bind_new(g, n, n->output[0]);
    b->kind = OX_CONST;
    b->cst = c;
    return &g->consts[c];
}

static void fold_constant(ox_graph *g, const Onnx__NodeProto *n)
{
    const Onnx__AttributeProto *a = n->n_attribute == 1 ? n->attribute[0] : NULL;
    if (!a || !a->name)
        ox_refuse(g, n, "a Constant takes one named attribute");
    if (!strcmp(a->name, "value") && a->t) {
        int c = ox_const_from(g, a->t, n->output[0]);
        ox_bind *b = ox_bind_new(g, n, n->output[0]);
        b->kind = OX_CONST;
        b->cst = c;
    } else if (!strcmp(a->name, "value_float") && a->has_f) {
        emit(g, n, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 0, NULL)->own[0] = a->f;
    } else if (!strcmp(a->name, "value_int") && a->has_i) {
        emit(g, n, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 0, NULL)->own[0] = (double)a->i;
    } else if (!strcmp(a->name, "value_ints") || !strcmp(a->name, "value_floats")) {
        int ints = !strcmp(a->name, "value_ints");
        int64_t len = ints ? (int64_t)a->n_ints : (int64_t)a->n_floats;
        ox_const *c = emit(g, n, ints ? ONNX__TENSOR_PROTO__DATA_TYPE__INT64
                                      : ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 1, &len);
        for (int64_t i = 0; i < len; i++)
            c->own[i] = ints ? (double)a->ints[i] : a->floats[i];
    } else {
        ox_refuse(g, n, "attribute %s of a Constant is not supported", a->name);
    }
}

static void fold_slice(ox_graph *g, const Onnx__NodeProto *n, const ox_const *x)
{
    const ox_const *starts = cinput(g, n, 1), *ends = cinput(g, n, 2), *axes = cinput(g, n, 3),
                   *steps = cinput(g, n, 4);
    if (!starts || !ends || starts->count != ends->count || (axes && axes->count != starts->count) ||
        (steps && steps->count != starts->count))
        ox_bad(g, n, "starts, ends, axes and steps must be constants of one length");
    int64_t lo[OX_MAX_DIMS], step[OX_MAX_DIMS], dims[OX_MAX_DIMS], st[OX_MAX_DIMS];
    for (int d = 0; d < x->ndims; d++) {
        lo[d] = 0;
        step[d] = 1;
        dims[d] = x->dims[d];
    }
    for (int64_t i = 0; i < starts->count; i++) {
        int64_t ax = axes ? normal_axis(g, n, ox_at(axes, i), x->ndims) : i;
        if (ax >= x->ndims)
            ox_bad(g, n, "more starts than dimensions");
        double s = ox_at(starts, i), e = ox_at(ends, i), k = steps ? ox_at(steps, i) : 1;
        double dim = (double)x->dims[ax];
        if (k == 0 || isnan(k) || isnan(s) || isnan(e))
            ox_bad(g, n, "a step of 0 or a NaN");
        k = fmax(fmin(k, dim + 1), -dim - 1); /* the same elements; an integer's range */
        if (s < 0) s += dim;
        if (e < 0) e += dim;
        if (k > 0) {
            s = fmin(fmax(s, 0), dim);
            e = fmin(fmax(e, 0), dim);
        } else {
            s = fmin(fmax(s, 0), dim - 1);
            e = fmin(fmax(e, -1), dim - 1);
        }
        lo[ax] = (int64_t)s;
        step[ax] = (int64_t)k;
        dims[ax] = (int64_t)fmax(0, ceil((e - s) / k));
    }
    strides(x->dims, x->ndims, st);
    ox_const *y = emit(g, n, x->dtype, x->ndims, dims);
    x = cinput(g, n, 0); /* emit may have moved the constants */
    int64_t pos[OX_MAX_DIMS] = {0};
    for (int64_t o = 0; o < y->count; o++) {
        int64_t src = 0;
        for (int d = 0; d < x->ndims; d++)
            src += (lo[d] + pos[d] * step[d]) * st[d];
        y->own[o] = ox_at(x, src);
        for (int d = x->ndims - 1; d >= 0 && ++pos[d] == dims[d]; d--)
            pos[d] = 0;
    }
}

static void fold_transpose(ox_graph *g, const Onnx__NodeProto *n, const ox_const *x)
{
    const Onnx__AttributeProto *a = ox_attr(n, "perm");
    int64_t perm[OX_MAX_DIMS], dims[OX_MAX_DIMS], st[OX_MAX_DIMS];
    int seen[OX_MAX_DIMS] = {0};
    if (a && (int)a->n_ints != x->ndims)
        ox_bad(g, n, "perm has %zu entries for rank %d", a->n_ints, x->ndims);
    for (int d = 0; d < x->ndims; d++) {
        perm[d] = a ? a->ints[d] : x->ndims - 1 - d;
        if (perm[d] < 0 || perm[d] >= x->ndims || seen[perm[d]]++)
            ox_bad(g, n, "perm is not a permutation");
        dims[d] = x->dims[perm[d]];
    }
    strides(x->dims, x->ndims, st);
    ox_const *y = emit(g, n, x->dtype, x->ndims, dims);
    x = cinput(g, n, 0);
    int64_t pos[OX_MAX_DIMS] = {0};
    for (int64_t o = 0; o < y->count; o++) {
        int64_t src = 0;
        for (int d = 0; d < x->ndims; d++)
            src += pos[d] * st[perm[d]];
        y->own[o] = ox_at(x, src);
        for (int d = x->ndims - 1; d >= 0 && ++pos[d] == dims[d]; d--)
            pos[d] = 0;
    }
}

static void fold_concat(ox_graph *g, const Onnx__NodeProto *n)
{
    const ox_const *first = cinput(g, n, 0);
    int64_t ax = normal_axis(g, n, (double)ox_attr_int(g, n, "axis", 0), first->ndims);
    int64_t dims[OX_MAX_DIMS], outer = 1;
    memcpy(dims, first->dims, sizeof dims);
    dims[ax] = 0;
    for (size_t k = 0; k < n->n_input; k++) {
        const ox_const *x = cinput(g, n, k);
        if (x->ndims != first->ndims)
            ox_bad(g, n, "inputs of different ranks");
        for (int d = 0; d < x->ndims; d++)
            if (d != ax && x->dims[d] != first->dims[d])
                ox_bad(g, n, "inputs of different shapes");
        dims[ax] += x->dims[ax];
    }
    for (int d = 0; d < ax; d++)
        outer *= first->dims[d];
    ox_const *y = emit(g, n, first->dtype, first->ndims, dims);
    int64_t o = 0;
    for (int64_t i = 0; i < outer; i++)
        for (size_t k = 0; k < n->n_input; k++) {
            const ox_const *x = cinput(g, n, k);
            int64_t chunk = outer ? x->count / outer : 0;
            for (int64_t j = 0; j < chunk; j++)
                y->own[o++] = ox_at(x, i * chunk + j);
        }
}

/* Reshape, Unsqueeze, Squeeze: the same values under new dims */
static void fold_dims(ox_graph *g, const Onnx__NodeProto *n, const ox_const *x)
{
    int64_t dims[OX_MAX_DIMS];
    int nd = 0;
    const ox_const *arg = cinput(g, n, 1);
    const Onnx__AttributeProto *axes_attr = ox_attr(n, "axes");
    if (!strcmp(n->op_type, "Reshape")) {
        if (!arg || arg->count > OX_MAX_DIMS)
            ox_bad(g, n, "the shape must be a constant of rank at most %d", OX_MAX_DIMS);
        int64_t known = 1, infer = -1;
        for (nd = 0; nd < arg->count; nd++) {
            double e = ox_at(arg, nd); /* checked before it becomes an integer */
            if (!(e >= -1 && e <= (double)INT32_MAX))
                ox_bad(g, n, "shape entry %g", e);
            int64_t v = (int64_t)e;
            dims[nd] = v == 0 && nd < x->ndims ? x->dims[nd] : v;
            if (v == -1 && infer < 0)
                infer = nd;
            else if (dims[nd] < 0)
                ox_bad(g, n, "shape entry %lld", (long long)v);
            else if (__builtin_mul_overflow(known, dims[nd], &known))
                ox_bad(g, n, "the shape holds more than 2^63 values");
        }
        if (infer >= 0)
            dims[infer] = known ? x->count / known : 0;
    } else {
        int64_t axes[OX_MAX_DIMS];
        int n_axes = arg ? (int)arg->count : axes_attr ? (int)axes_attr->n_ints : 0;
        int squeeze = !strcmp(n->op_type, "Squeeze");
        int rank = squeeze ? x->ndims : x->ndims + n_axes;
        if (n_axes > OX_MAX_DIMS || rank > OX_MAX_DIMS)
            ox_bad(g, n, "too many axes");
        for (int i = 0; i < n_axes; i++)
            axes[i] = normal_axis(g, n, arg ? ox_at(arg, i) : (double)axes_attr->ints[i], rank);
        for (int d = 0, k = 0; d < rank; d++) {
            int listed = 0;
            for (int i = 0; i < n_axes; i++)
                listed |= axes[i] == d;
            if (squeeze && ((n_axes == 0 && x->dims[d] == 1) || listed))
                continue;
            dims[nd++] = squeeze ? x->dims[d] : listed ? 1 : x->dims[k++];
        }
    }
    int64_t count = 1;
    for (int d = 0; d < nd; d++)
        if (__builtin_mul_overflow(count, dims[d], &count))
            ox_bad(g, n, "the shape holds more than 2^63 values");
    if (count != x->count)
        ox_bad(g, n, "%lld values cannot take the new shape", (long long)x->count);
    ox_const *y = emit(g, n, x->dtype, nd, dims);
    x = cinput(g, n, 0);
    for (int64_t i = 0; i < y->count; i++)
        y->own[i] = ox_at(x, i);
}

/* Add, Sub, Mul, Div of equal shapes, or of a scalar and a tensor */
static void fold_arith(ox_graph *g, const Onnx__NodeProto *n, char op)
{
    const ox_const *a = cinput(g, n, 0), *b = cinput(g, n, 1);
    if (!b || (a->count != b->count && a->count != 1 && b->count != 1))
        ox_refuse(g, n, "dnal folds arithmetic of equal shapes or with a scalar only");
    const ox_const *big = a->count > b->count || (a->count == b->count && a->ndims >= b->ndims) ? a : b;
    int64_t dims[OX_MAX_DIMS];
    memcpy(dims, big->dims, sizeof dims);
    int nd = big->ndims, dtype = a->dtype;
    ox_const *y = emit(g, n, dtype, nd, dims);
    a = cinput(g, n, 0);
    b = cinput(g, n, 1);
    for (int64_t i = 0; i < y->count; i++) {
        double x = ox_at(a, a->count == 1 ? 0 : i), z = ox_at(b, b->count == 1 ? 0 : i), r;
        if (op == '/' && z == 0)
            ox_bad(g, n, "a division by zero");
        r = op == '+' ? x + z : op == '-' ? x - z : op == '*' ? x * z : x / z;
        int integer = dtype != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT &&
                      dtype != ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
        y->own[i] = integer ? (op == '/' ? floor(r) : r) : dtype == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ? (double)(float)r : r;
    }
}

static void fold_gather(ox_graph *g, const Onnx__NodeProto *n, const ox_const *x)
{
    const ox_const *ind = cinput(g, n, 1);
    int64_t ax = normal_axis(g, n, (double)ox_attr_int(g, n, "axis", 0), x->ndims);
    if (!ind || x->ndims - 1 + ind->ndims > OX_MAX_DIMS)
        ox_bad(g, n, "the indices must be a constant");
    int64_t dims[OX_MAX_DIMS], outer = 1, inner = 1, nd = 0, len = x->dims[ax];
    for (int d = 0; d < ax; d++)
        outer *= (dims[nd++] = x->dims[d]);
    for (int d = 0; d < ind->ndims; d++)
        dims[nd++] = ind->dims[d];
    for (int d = (int)ax + 1; d < x->ndims; d++)
        inner *= (dims[nd++] = x->dims[d]);
    int64_t m = ind->count;
    ox_const *y = emit(g, n, x->dtype, (int)nd, dims);
    x = cinput(g, n, 0);
    ind = cinput(g, n, 1);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < m; j++) {
            int64_t k = ox_at_int(g, n, ind, j, -len, len - 1, "index");
            k += k < 0 ? len : 0;
            for (int64_t i = 0; i < inner; i++)
                y->own[(o * m + j) * inner + i] = ox_at(x, (o * len + k) * inner + i);
        }
}

int ox_fold(ox_graph *g, const Onnx__NodeProto *n)
{
    const char *op = n->op_type;
    if (!strcmp(op, "Constant")) {
        fold_constant(g, n);
        return 1;
    }
    if (n->n_input == 0)
        return 0;
    for (size_t k = 0; k < n->n_input; k++) /* every present input a constant */
        if (n->input[k][0] && !cinput(g, n, k))
            return 0;
    const ox_const *x = cinput(g, n, 0);
    if (!x)
        return 0;
    if (!strcmp(op, "ConstantOfShape")) {
        int64_t dims[OX_MAX_DIMS];
        if (x->ndims != 1 || x->count > OX_MAX_DIMS)
            ox_bad(g, n, "the shape must be a 1-D constant of at most %d entries", OX_MAX_DIMS);
        int rank = (int)x->count;
        for (int d = 0; d < rank; d++)
            dims[d] = ox_at_int(g, n, x, d, 0, INT32_MAX, "shape entry");
        const Onnx__AttributeProto *a = ox_attr(n, "value");
        ox_const *v = NULL;
        if (a && a->t)
            v = &g->consts[ox_const_from(g, a->t, "value")];
        if (v && v->count != 1)
            ox_bad(g, n, "the value must hold one element");
        double fill = v ? ox_at(v, 0) : 0.0;
        int dtype = v ? v->dtype : ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
        ox_const *y = emit(g, n, dtype, rank, dims);
        for (int64_t i = 0; i < y->count; i++)
            y->own[i] = fill;
    } else if (!strcmp(op, "Shape")) {
        int64_t rank = x->ndims, lo = ox_attr_int(g, n, "start", 0), hi = ox_attr_int(g, n, "end", rank);
        lo = lo < 0 ? lo + rank : lo;
        hi = hi < 0 ? hi + rank : hi > rank ? rank : hi;
        lo = lo < 0 ? 0 : lo > rank ? rank : lo;
        int64_t len = hi > lo ? hi - lo : 0, dims[OX_MAX_DIMS];
        memcpy(dims, x->dims, sizeof dims);
        ox_const *y = emit(g, n, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 1, &len);
        for (int64_t i = 0; i < len; i++)
            y->own[i] = (double)dims[lo + i];
    } else if (!strcmp(op, "Gather")) {
        fold_gather(g, n, x);
    } else if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div")) {
        fold_arith(g, n, op[0] == 'A' ? '+' : op[0] == 'S' ? '-' : op[0] == 'M' ? '*' : '/');
    } else if (!strcmp(op, "Concat")) {
        fold_concat(g, n);
    } else if (!strcmp(op, "Slice")) {
        fold_slice(g, n, x);
    } else if (!strcmp(op, "Transpose")) {
        fold_transpose(g, n, x);
    } else if (!strcmp(op, "Reshape") || !strcmp(op, "Unsqueeze") || !strcmp(op, "Squeeze")) {
        fold_dims(g, n, x);
    } else if (!strcmp(op, "Cast")) {
        int64_t to = ox_attr_int(g, n, "to", 0);
        if (to != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && to != ONNX__TENSOR_PROTO__DATA_TYPE__INT64 &&
            to != ONNX__TENSOR_PROTO__DATA_TYPE__INT32 && to != ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE)
            ox_refuse(g, n, "a Cast to type %lld", (long long)to);
        int64_t dims[OX_MAX_DIMS];
        memcpy(dims, x->dims, sizeof dims);
        ox_const *y = emit(g, n, (int)to, x->ndims, dims);
        x = cinput(g, n, 0);
        for (int64_t i = 0; i < y->count; i++) {
            double v = ox_at(x, i);
            y->own[i] = to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ? (double)(float)v
                        : to == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ? v
                                                                      : trunc(v);
        }
    } else {
        return 0;
    }
    return 1;
}
