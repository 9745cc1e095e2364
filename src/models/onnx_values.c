/* The values a node reads and writes: an ONNX name stands for a constant,
 * a dnal tensor (possibly flattened, or with Slices pending) or channels
 * placed among zeros (ox_bind); layer names. Shared by onnx_ops.c and
 * onnx_place.c. */
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

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
void ox_set_name(ox_graph *g, ox_op *op, const char *weight, const Onnx__NodeProto *n, size_t i)
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

ox_bind ox_input_raw(ox_ctx *c, const Onnx__NodeProto *n, size_t k)
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
ox_bind ox_input(ox_ctx *c, const Onnx__NodeProto *n, size_t k)
{
    ox_bind b = ox_input_raw(c, n, k);
    if (b.kind != OX_VALUE || (b.step_h <= 1 && b.step_w <= 1))
        return b;
    if (b.step_h != b.step_w)
        ox_refuse(c->g, n, "input %s is sliced with steps %lld on H and %lld on W; dnal subsamples "
                  "both alike", n->input[k], (long long)b.step_h, (long long)b.step_w);
    if (b.materialized < 0) {
        ox_graph *g = c->g;
        const ox_value xv = g->values[b.value];
        ox_op *op = ox_op_new(g, OX_AVGPOOL, n);
        ox_set_name(g, op, NULL, NULL, c->i);
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

const ox_const *ox_constant(ox_ctx *c, const Onnx__NodeProto *n, size_t k, const char *what)
{
    if (k >= n->n_input || !n->input[k][0])
        return NULL;
    ox_bind b = ox_input(c, n, k);
    if (b.kind != OX_CONST)
        ox_refuse(c->g, n, "%s (%s) is computed by the graph; dnal needs it constant (an "
                  "initializer)", what, n->input[k]);
    return &c->g->consts[b.cst];
}

int ox_const_index(ox_ctx *c, const Onnx__NodeProto *n, size_t k)
{
    return ox_input(c, n, k).cst;
}

/* a PLACED binding as its own tensor: a scatter-add into zeros */
int ox_materialize(ox_ctx *c, const Onnx__NodeProto *n, const char *name)
{
    ox_graph *g = c->g;
    ox_bind *b = ox_find(g, name);
    if (b->materialized >= 0)
        return b->materialized;
    ox_bind copy = *b;
    ox_op *op = ox_op_new(g, OX_PLACE, n);
    ox_set_name(g, op, NULL, n, c->i);
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
int ox_activation(ox_ctx *c, const Onnx__NodeProto *n, size_t k, int allow_flat, int *flat)
{
    ox_bind b = ox_input(c, n, k);
    if (b.kind == OX_CONST)
        ox_refuse(c->g, n, "input %s is a constant where dnal needs an activation", n->input[k]);
    int v = b.kind == OX_PLACED ? ox_materialize(c, n, n->input[k]) : b.value;
    if (b.flat && !allow_flat)
        ox_refuse(c->g, n, "input %s is flattened (N x C*H*W); dnal runs this operator on N x C x "
                  "H x W tensors or on a Gemm's output", n->input[k]);
    if (flat)
        *flat = b.kind == OX_VALUE && b.flat;
    return v;
}

void ox_bind_value(ox_ctx *c, const Onnx__NodeProto *n, size_t k, int value, int flat)
{
    if (k >= n->n_output)
        ox_bad(c->g, n, "output %zu is missing", k);
    ox_bind *b = ox_bind_new(c->g, n, n->output[k]);
    b->kind = OX_VALUE;
    b->value = value;
    b->flat = flat;
}

/* output 0 names what input 0 names (Identity, Dropout, Flatten, ...) */
void ox_alias(ox_ctx *c, const Onnx__NodeProto *n, int flat)
{
    ox_bind in = ox_input_raw(c, n, 0);
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

