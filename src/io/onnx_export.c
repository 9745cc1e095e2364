/* dnal export -o MODEL.onnx: a network (the compact one) as an ONNX model,
 * opset 13, IR version 7, a dynamic batch ("batch"), input "input"
 * (N x C x H x W floats) and output "logits" (N x classes, before the
 * softmax). Each layer becomes the node of its name:
 *
 *   conv        Conv (weights "<layer>.weight", "<layer>.bias")
 *   batch norm  BatchNormalization (epsilon 1e-5, momentum 0.9), or folded
 *               into the conv before it (fold_bn: W s/sqrt(v+eps), the
 *               bias (b - mean) s/sqrt(v+eps) + shift)
 *   relu/relu6  Relu / Clip(0, 6)
 *   pooling     MaxPool, AveragePool (count_include_pad=1), GlobalAveragePool
 *   linear      Flatten (a 4-D input) and Gemm (transB=1)
 *   add         Add
 *   scatter-add a Pad of the channels where they are contiguous among zeros
 *               (the zero-padded shortcut), else a Pad of one zero channel and
 *               a Gather placing each channel (a compact residual sum), then
 *               the Add of the base
 *
 * The file is written to PATH.tmp and renamed when complete. dnal's
 * importer reads what this writes (tests/cli/test_onnx.sh). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../models/onnx/onnx.pb-c.h"
#include "config.h"
#include "dnal/io.h"

typedef struct writer {
    Onnx__GraphProto graph;
    void **owned;          /* everything allocated, freed after packing */
    size_t n_owned, cap_owned;
    char **names;          /* per tensor of the net: its ONNX name */
} writer;

static void *own(writer *w, void *p)
{
    if (w->n_owned == w->cap_owned) {
        w->cap_owned = w->cap_owned ? 2 * w->cap_owned : 256;
        w->owned = dnal_realloc(w->owned, sizeof *w->owned * w->cap_owned);
    }
    w->owned[w->n_owned++] = p;
    return p;
}

static char *str(writer *w, const char *fmt, const char *a, const char *b)
{
    size_t len = strlen(fmt) + strlen(a) + (b ? strlen(b) : 0) + 1;
    char *s = own(w, dnal_alloc(len));
    snprintf(s, len, fmt, a, b ? b : "");
    return s;
}

/* appends p to the array *arr of *n (grown one at a time; owned) */
static void push(writer *w, void ***arr, size_t *n, void *p)
{
    void **grown = dnal_alloc(sizeof *grown * (*n + 1));
    if (*n)
        memcpy(grown, *arr, sizeof *grown * *n);
    grown[(*n)++] = p;
    own(w, grown);
    *arr = grown;
}

static Onnx__TensorProto *tensor(writer *w, const char *name, int dtype, int ndims,
                                 const int64_t *dims)
{
    Onnx__TensorProto *t = own(w, dnal_alloc(sizeof *t));
    onnx__tensor_proto__init(t);
    t->name = str(w, "%s%s", name, NULL);
    t->has_data_type = 1;
    t->data_type = dtype;
    t->n_dims = (size_t)ndims;
    t->dims = own(w, dnal_alloc(sizeof *t->dims * (size_t)(ndims + 1)));
    if (ndims > 0)
        memcpy(t->dims, dims, sizeof *t->dims * (size_t)ndims);
    push(w, (void ***)&w->graph.initializer, &w->graph.n_initializer, t);
    return t;
}

/* a FLOAT initializer (values copied, little-endian raw data) */
static const char *floats(writer *w, const char *layer, const char *what, const float *v,
                          int ndims, const int64_t *dims)
{
    char *name = str(w, "%s.%s", layer, what);
    Onnx__TensorProto *t = tensor(w, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, ndims, dims);
    size_t count = 1;
    for (int d = 0; d < ndims; d++)
        count *= (size_t)dims[d];
    t->has_raw_data = 1;
    t->raw_data.len = count * sizeof(float);
    t->raw_data.data = own(w, dnal_alloc(t->raw_data.len + 1));
    memcpy(t->raw_data.data, v, t->raw_data.len);
    return name;
}

static const char *ints(writer *w, const char *name, const int64_t *v, int64_t n)
{
    Onnx__TensorProto *t = tensor(w, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 1, &n);
    t->n_int64_data = (size_t)n;
    t->int64_data = own(w, dnal_alloc(sizeof *v * (size_t)(n + 1)));
    memcpy(t->int64_data, v, sizeof *v * (size_t)n);
    return t->name;
}

static Onnx__NodeProto *node(writer *w, const char *op, const char *name, const char *out)
{
    Onnx__NodeProto *n = own(w, dnal_alloc(sizeof *n));
    onnx__node_proto__init(n);
    n->op_type = str(w, "%s%s", op, NULL);
    n->name = str(w, "%s%s", name, NULL);
    push(w, (void ***)&n->output, &n->n_output, str(w, "%s%s", out, NULL));
    push(w, (void ***)&w->graph.node, &w->graph.n_node, n);
    return n;
}

static void in(writer *w, Onnx__NodeProto *n, const char *name)
{
    push(w, (void ***)&n->input, &n->n_input, str(w, "%s%s", name, NULL));
}

static void attr_ints(writer *w, Onnx__NodeProto *n, const char *name, const int64_t *v, size_t count)
{
    Onnx__AttributeProto *a = own(w, dnal_alloc(sizeof *a));
    onnx__attribute_proto__init(a);
    a->name = str(w, "%s%s", name, NULL);
    a->has_type = 1;
    if (count == 0) { /* a single int */
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
        a->has_i = 1;
        a->i = v[0];
    } else {
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
        a->n_ints = count;
        a->ints = own(w, dnal_alloc(sizeof *a->ints * count));
        memcpy(a->ints, v, sizeof *a->ints * count);
    }
    push(w, (void ***)&n->attribute, &n->n_attribute, a);
}

static void attr_float(writer *w, Onnx__NodeProto *n, const char *name, float v)
{
    Onnx__AttributeProto *a = own(w, dnal_alloc(sizeof *a));
    onnx__attribute_proto__init(a);
    a->name = str(w, "%s%s", name, NULL);
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    a->has_f = 1;
    a->f = v;
    push(w, (void ***)&n->attribute, &n->n_attribute, a);
}

static void window(writer *w, Onnx__NodeProto *n, const dnal_layer *l)
{
    int64_t k[2] = {l->kernel, l->kernel}, s[2] = {l->stride, l->stride},
            p[4] = {l->pad, l->pad, l->pad, l->pad};
    attr_ints(w, n, "kernel_shape", k, 2);
    attr_ints(w, n, "strides", s, 2);
    attr_ints(w, n, "pads", p, 4);
}

static Onnx__ValueInfoProto *value_info(writer *w, const char *name, int ndims, const int64_t *dims)
{
    Onnx__ValueInfoProto *v = own(w, dnal_alloc(sizeof *v));
    Onnx__TypeProto *t = own(w, dnal_alloc(sizeof *t));
    Onnx__TypeProto__Tensor *tt = own(w, dnal_alloc(sizeof *tt));
    Onnx__TensorShapeProto *shape = own(w, dnal_alloc(sizeof *shape));
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(t);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(shape);
    v->name = str(w, "%s%s", name, NULL);
    v->type = t;
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = tt;
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = shape;
    for (int d = 0; d < ndims; d++) {
        Onnx__TensorShapeProto__Dimension *dim = own(w, dnal_alloc(sizeof *dim));
        onnx__tensor_shape_proto__dimension__init(dim);
        if (d == 0) { /* the batch */
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dim->dim_param = str(w, "batch", "", NULL);
        } else {
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dim->dim_value = dims[d];
        }
        push(w, (void ***)&shape->dim, &shape->n_dim, dim);
    }
    return v;
}

/* the BN reading conv l's output alone, or NULL */
static const dnal_layer *bn_after(const dnal_net *net, int i)
{
    const dnal_layer *l = net->layers[i], *bn = NULL;
    int readers = 0;
    for (int j = i + 1; j < net->n_layers; j++)
        for (int k = 0; k < net->layers[j]->n_in; k++)
            if (net->layers[j]->in[k] == l->out) {
                readers++;
                bn = net->layers[j];
            }
    return readers == 1 && bn->kind == DNAL_BN ? bn : NULL;
}

static void conv(writer *w, const dnal_net *net, int i, int fold_bn, char *folded)
{
    const dnal_layer *l = net->layers[i], *bn = fold_bn ? bn_after(net, i) : NULL;
    const dnal_param *wp = &l->param[0];
    int64_t o = wp->dims[0], per = (int64_t)wp->count / o;
    const float *wt = dnal_net_param(net, l, 0), *b = l->n_params == 2 ? dnal_net_param(net, l, 1) : NULL;
    float *fw = NULL, *fb = NULL;
    const char *out = w->names[l->out->id];
    if (bn) { /* y = s (conv(x) + b - mean) / sqrt(v + eps) + shift */
        const float *s = dnal_net_param(net, bn, 0), *sh = dnal_net_param(net, bn, 1);
        const float *mean = net->stats + bn->stats_off, *var = mean + o;
        fw = dnal_alloc(sizeof *fw * wp->count);
        fb = dnal_alloc(sizeof *fb * (size_t)o);
        for (int64_t c = 0; c < o; c++) {
            double f = (double)s[c] / sqrt((double)var[c] + 1e-5);
            for (int64_t k = 0; k < per; k++)
                fw[c * per + k] = (float)(wt[c * per + k] * f);
            fb[c] = (float)(((b ? b[c] : 0.0) - mean[c]) * f + sh[c]);
        }
        wt = fw;
        b = fb;
        for (int j = 0; j < net->n_layers; j++)
            if (net->layers[j] == bn)
                folded[j] = 1;
        out = w->names[bn->out->id];
    }
    Onnx__NodeProto *n = node(w, "Conv", l->name, out);
    in(w, n, w->names[l->in[0]->id]);
    in(w, n, floats(w, l->name, "weight", wt, wp->ndims, wp->dims));
    if (b)
        in(w, n, floats(w, l->name, "bias", b, 1, &o));
    window(w, n, l);
    int64_t one[2] = {1, 1}, g = l->groups;
    attr_ints(w, n, "dilations", one, 2);
    attr_ints(w, n, "group", &g, 0);
    free(fw);
    free(fb);
}

static void batchnorm(writer *w, const dnal_net *net, const dnal_layer *l)
{
    int64_t c = (int64_t)l->n_stats / 2;
    const float *stats = net->stats + l->stats_off;
    Onnx__NodeProto *n = node(w, "BatchNormalization", l->name, w->names[l->out->id]);
    in(w, n, w->names[l->in[0]->id]);
    in(w, n, floats(w, l->name, "weight", dnal_net_param(net, l, 0), 1, &c));
    in(w, n, floats(w, l->name, "bias", dnal_net_param(net, l, 1), 1, &c));
    in(w, n, floats(w, l->name, "running_mean", stats, 1, &c));
    in(w, n, floats(w, l->name, "running_var", stats + c, 1, &c));
    attr_float(w, n, "epsilon", 1e-5f);
    attr_float(w, n, "momentum", 0.9f);
}

static void linear(writer *w, const dnal_net *net, const dnal_layer *l)
{
    const char *x = w->names[l->in[0]->id];
    if (l->in[0]->ndims == 4) {
        const char *flat = str(w, "%s.flatten", l->name, NULL);
        Onnx__NodeProto *f = node(w, "Flatten", flat, flat);
        in(w, f, x);
        int64_t axis = 1;
        attr_ints(w, f, "axis", &axis, 0);
        x = flat;
    }
    Onnx__NodeProto *n = node(w, "Gemm", l->name, w->names[l->out->id]);
    in(w, n, x);
    in(w, n, floats(w, l->name, "weight", dnal_net_param(net, l, 0), 2, l->param[0].dims));
    if (l->n_params == 2)
        in(w, n, floats(w, l->name, "bias", dnal_net_param(net, l, 1), 1, l->param[1].dims));
    int64_t one = 1;
    attr_ints(w, n, "transB", &one, 0);
}

static void scatter_add(writer *w, const dnal_layer *l)
{
    const int64_t *idx = dnal_scatter_add_indices(l);
    int64_t cb = l->in[0]->c, out_c = l->out->c;
    int contiguous = 1;
    for (int64_t k = 1; k < cb; k++)
        contiguous &= idx[k] == idx[0] + k;
    int base = l->n_in == 2;
    const char *placed = base ? str(w, "%s.placed", l->name, NULL) : w->names[l->out->id];
    int64_t pads[8] = {0}, *gather = NULL;
    if (contiguous) {
        pads[1] = idx[0];
        pads[5] = out_c - idx[0] - cb;
    } else {
        pads[5] = 1; /* one zero channel, which every unplaced channel gathers */
        gather = dnal_alloc(sizeof *gather * (size_t)(out_c + 1));
        for (int64_t j = 0; j < out_c; j++)
            gather[j] = cb;
        for (int64_t k = 0; k < cb; k++)
            gather[idx[k]] = k;
    }
    const char *padded = contiguous ? placed : str(w, "%s.pad", l->name, NULL);
    Onnx__NodeProto *p = node(w, "Pad", str(w, "%s.pad", l->name, NULL), padded);
    in(w, p, w->names[l->in[0]->id]);
    in(w, p, ints(w, str(w, "%s.pads", l->name, NULL), pads, 8));
    if (gather) {
        Onnx__NodeProto *g = node(w, "Gather", str(w, "%s.gather", l->name, NULL), placed);
        in(w, g, padded);
        in(w, g, ints(w, str(w, "%s.indices", l->name, NULL), gather, out_c));
        int64_t axis = 1;
        attr_ints(w, g, "axis", &axis, 0);
        free(gather);
    }
    if (base) {
        Onnx__NodeProto *a = node(w, "Add", l->name, w->names[l->out->id]);
        in(w, a, w->names[l->in[1]->id]);
        in(w, a, placed);
    }
}

static void layer(writer *w, const dnal_net *net, int i, int fold_bn, char *folded)
{
    const dnal_layer *l = net->layers[i];
    const char *x = l->n_in ? w->names[l->in[0]->id] : NULL, *y = l->out ? w->names[l->out->id] : NULL;
    Onnx__NodeProto *n = NULL;
    switch (l->kind) {
    case DNAL_CONV: conv(w, net, i, fold_bn, folded); return;
    case DNAL_BN:
        if (!folded[i])
            batchnorm(w, net, l);
        return;
    case DNAL_RELU: n = node(w, "Relu", l->name, y); break;
    case DNAL_RELU6: {
        float lo = 0, hi = 6;
        n = node(w, "Clip", l->name, y);
        in(w, n, x);
        in(w, n, floats(w, l->name, "min", &lo, 0, NULL));
        in(w, n, floats(w, l->name, "max", &hi, 0, NULL));
        return;
    }
    case DNAL_MAXPOOL: case DNAL_AVGPOOL: {
        n = node(w, l->kind == DNAL_MAXPOOL ? "MaxPool" : "AveragePool", l->name, y);
        window(w, n, l);
        int64_t one = 1;
        if (l->kind == DNAL_AVGPOOL)
            attr_ints(w, n, "count_include_pad", &one, 0);
        break;
    }
    case DNAL_GAP: n = node(w, "GlobalAveragePool", l->name, y); break;
    case DNAL_LINEAR: linear(w, net, l); return;
    case DNAL_ADD:
        n = node(w, "Add", l->name, y);
        in(w, n, w->names[l->in[1]->id]);
        break;
    case DNAL_SCATTER_ADD: scatter_add(w, l); return;
    case DNAL_GATE: /* a pruned gate passes what it keeps: the same values */
        n = node(w, "Identity", l->name, y);
        break;
    case DNAL_SOFTMAX_CE: return; /* the logits are the output */
    default:
        dnal_fatal(DNAL_EXIT_SOFTWARE, "onnx export: layer kind %s", dnal_layer_kind_name(l->kind));
    }
    /* the single input goes first (Add's second one was pushed above) */
    push(w, (void ***)&n->input, &n->n_input, NULL);
    memmove(n->input + 1, n->input, sizeof *n->input * (n->n_input - 1));
    n->input[0] = str(w, "%s%s", x, NULL);
}

void dnal_onnx_save(const char *path, const dnal_net *net, int fold_bn)
{
    DNAL_ASSERT(net->loss && net->input->ndims == 4);
    writer w = {0};
    onnx__graph_proto__init(&w.graph);
    w.graph.name = str(&w, "dnal", "", NULL);
    w.names = own(&w, dnal_calloc(sizeof *w.names * (size_t)(net->n_tensors + 1)));
    const dnal_tensor *logits = net->loss->in[0];
    for (int i = 0; i < net->n_tensors; i++) {
        const dnal_tensor *t = net->tensors[i];
        w.names[i] = t == net->input ? "input" : t == logits ? "logits"
                                                             : net->layers[t->producer]->name;
    }
    int64_t in_dims[4] = {0, net->input->c, net->input->h, net->input->w}, out_dims[2] = {0, logits->c};
    push(&w, (void ***)&w.graph.input, &w.graph.n_input, value_info(&w, "input", 4, in_dims));
    push(&w, (void ***)&w.graph.output, &w.graph.n_output, value_info(&w, "logits", 2, out_dims));
    char *folded = dnal_calloc((size_t)net->n_layers + 1);
    for (int i = 0; i < net->n_layers; i++)
        layer(&w, net, i, fold_bn, folded);
    free(folded);

    Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    Onnx__OperatorSetIdProto *opsets[1] = {&opset};
    opset.domain = "";
    opset.has_version = 1;
    opset.version = 13;
    Onnx__ModelProto model = ONNX__MODEL_PROTO__INIT;
    model.has_ir_version = 1;
    model.ir_version = 7;
    model.producer_name = "dnal";
    model.producer_version = PACKAGE_VERSION;
    model.n_opset_import = 1;
    model.opset_import = opsets;
    model.graph = &w.graph;
    size_t len = onnx__model_proto__get_packed_size(&model);
    uint8_t *buf = dnal_alloc(len + 1);
    onnx__model_proto__pack(&model, buf);
    char tmp[DNAL_PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fflush(f) != 0 || fsync(fileno(f)) != 0 ||
        fclose(f) != 0 || rename(tmp, path) != 0)
        dnal_fatal(DNAL_EXIT_DATA, "%s: cannot write the ONNX model: %s", path, strerror(errno));
    free(buf);
    for (size_t i = 0; i < w.n_owned; i++)
        free(w.owned[i]);
    free(w.owned);
}
