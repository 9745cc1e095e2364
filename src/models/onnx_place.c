/* Channel placement: a Pad of channels with zeros and a Gather of channels
 * among such zeros place a tensor's channels in a wider one (the zero-padded
 * ResNet shortcut, dnal's own compact residual sums); the Add reading them
 * becomes a scatter-add. The Slices of x[:, :, ::s, ::s] wait for their
 * reader (ox_input), which runs them as one strided 1x1 average. */
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

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
        ox_bind_value(c, n, 0, value, 0);
        return;
    }
    ox_bind *b = ox_bind_new(g, n, n->output[0]);
    b->kind = OX_PLACED;
    b->value = value;
    b->idx = idx;
    b->out_c = out_c;
}

void ox_pad(ox_ctx *c, const Onnx__NodeProto *n)
{
    ox_graph *g = c->g;
    ox_bind in = ox_input(c, n, 0);
    const Onnx__AttributeProto *mode = ox_attr(n, "mode");
    const ox_const *pads = ox_constant(c, n, 1, "pads"), *value = ox_constant(c, n, 2, "constant_value");
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
    int64_t *idx, out_c, before = ox_at_int(g, n, pads, 1, 0, 1 << 24, "channel pads"),
                         after = ox_at_int(g, n, pads, 5, 0, 1 << 24, "channel pads");
    placement(g, &in, &idx, &out_c);
    for (int64_t k = 0; k < g->values[in.value].c; k++)
        idx[k] += before;
    bind_placed(c, n, in.value, idx, out_c + before + after);
}

void ox_gather(ox_ctx *c, const Onnx__NodeProto *n)
{
    ox_graph *g = c->g;
    ox_bind in = ox_input(c, n, 0);
    const ox_const *ind = ox_constant(c, n, 1, "the indices");
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
        int64_t s = ox_at_int(g, n, ind, j, -out_c, out_c - 1, "channel index");
        if (s < 0)
            s += out_c;
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

void ox_slice(ox_ctx *c, const Onnx__NodeProto *n)
{
    ox_graph *g = c->g;
    ox_bind in = ox_input_raw(c, n, 0);
    if (in.kind != OX_VALUE || in.flat || g->values[in.value].ndims != 4)
        ox_refuse(g, n, "dnal implements a Slice of N x C x H x W activations only");
    const ox_value xv = g->values[in.value];
    const ox_const *starts = ox_constant(c, n, 1, "starts"), *ends = ox_constant(c, n, 2, "ends"),
                   *axes = ox_constant(c, n, 3, "axes"), *steps = ox_constant(c, n, 4, "steps");
    if (!starts || !ends || starts->count != ends->count || (axes && axes->count != starts->count) ||
        (steps && steps->count != starts->count))
        ox_bad(g, n, "starts, ends, axes and steps must be constants of one length");
    int64_t step[4] = {1, 1, 1, 1}, dims[4] = {INT64_MAX, xv.c, xv.h, xv.w};
    for (int64_t i = 0; i < starts->count; i++) {
        int64_t ax = axes ? ox_at_int(g, n, axes, i, -4, 3, "axis") : i;
        ax += ax < 0 ? 4 : 0;
        double s = ox_at(starts, i), e = ox_at(ends, i), k = steps ? ox_at(steps, i) : 1;
        if (s != 0 || e < (double)dims[ax] || k < 1 || k > 4096 || (ax < 2 && k != 1))
            ox_refuse(g, n, "dnal implements a Slice of every element with a step on H and W "
                      "(x[:, :, ::s, ::s])");
        step[ax] = (int64_t)k;
    }
    ox_alias(c, n, 0); /* the steps wait for the reader (ox_input() above) */
    ox_bind *b = ox_find(g, n->output[0]);
    b->step_h = (in.step_h > 1 ? in.step_h : 1) * step[2];
    b->step_w = (in.step_w > 1 ? in.step_w : 1) * step[3];
}

void ox_add(ox_ctx *c, const Onnx__NodeProto *n)
{
    ox_graph *g = c->g;
    ox_bind a = ox_input(c, n, 0), b = ox_input(c, n, 1);
    if (a.kind == OX_CONST || b.kind == OX_CONST)
        ox_refuse(g, n, "an Add of a constant; dnal adds constants only as a MatMul's bias");
    if (a.kind == OX_PLACED && b.kind == OX_PLACED)
        b = (ox_bind){.kind = OX_VALUE, .value = ox_materialize(c, n, n->input[1])};
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
    ox_set_name(g, op, NULL, n, c->i);
    op->n_in = 2;
    op->in[0] = placed ? placed->value : a.value;
    op->in[1] = placed ? base->value : b.value;
    if (placed) {
        op->out_c = placed->out_c;
        op->idx = dnal_alloc(sizeof *op->idx * (size_t)(av.c + 1));
        memcpy(op->idx, placed->idx, sizeof *op->idx * (size_t)av.c);
    }
    op->out = ox_value_new(g, 4, bv.c, bv.h, bv.w);
    ox_bind_value(c, n, 0, op->out, 0);
}

