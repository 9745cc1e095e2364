/* The ONNX importer's pieces (not installed; docs/design.md, "ONNX"):
 *
 *   onnx_graph.c   the file: read, unpacked by protobuf-c (onnx/onnx.pb-c.c,
 *                  generated from onnx/onnx.proto), every tensor checked, the
 *                  names of the graph and the constants (initializers,
 *                  Constant nodes, and shape arithmetic folded at import)
 *   onnx_ops.c     each node into dnal's operations (ox_op: one dnal layer
 *                  each), or a refusal naming the node
 *   onnx_gates.c   the gate placement rule on those operations
 *   onnx_import.c  the network, its starting weights, the plan of dnal info
 *
 * Exit codes: a file that is not a well-formed ONNX model (bad protobuf,
 * sizes that disagree, a name nothing makes) is 2; what dnal does not
 * implement (an operator, an attribute value, a dynamic dimension other
 * than the batch, an opset outside 11-17) is 1, before any work. */
#ifndef DNAL_MODELS_ONNX_INTERNAL_H
#define DNAL_MODELS_ONNX_INTERNAL_H

#include <stdio.h>

#include "dnal/models.h"
#include "onnx/onnx.pb-c.h"

#define OX_SUPPORTED                                                                       \
    "Conv, BatchNormalization, Relu, Clip (0, 6), Add, MaxPool, AveragePool, "            \
    "GlobalAveragePool, Flatten, Reshape (to 2-D), Gemm, MatMul (+ Add), Identity, "      \
    "Dropout; Pad (zero channels), Slice (strided H and W), Gather (channels of a Pad); "  \
    "on constants: Constant, ConstantOfShape, Shape, Gather, Concat, Reshape, Slice, "     \
    "Transpose, Cast, Unsqueeze, Squeeze, Add, Sub, Mul, Div"

enum { OX_MAX_DIMS = 8 };

/* A constant tensor: an initializer or Constant node of the file (data read
 * through t, checked to hold count values), or one folded at import (own). */
typedef struct ox_const {
    int dtype; /* ONNX TensorProto.DataType: FLOAT 1, INT32 6, INT64 7, BOOL 9, DOUBLE 11 */
    int ndims;
    int64_t dims[OX_MAX_DIMS];
    int64_t count;
    const Onnx__TensorProto *t;
    double *own;
} ox_const;

/* What an ONNX value name stands for. */
typedef enum ox_bind_kind { OX_NONE, OX_CONST, OX_VALUE, OX_PLACED } ox_bind_kind;

typedef struct ox_bind {
    const char *name;
    ox_bind_kind kind;
    int cst;       /* OX_CONST: index into consts */
    int value;     /* OX_VALUE: a dnal tensor; OX_PLACED: the tensor placed */
    int flat;      /* OX_VALUE: Flatten or Reshape made it (N, C*H*W) */
    int64_t out_c; /* OX_PLACED: value's channel k at idx[k] of out_c zeros */
    int64_t *idx;
    int materialized; /* OX_PLACED: the value of its scatter-add, -1: none yet */
    int64_t step_h, step_w; /* OX_VALUE: Slices on H and W pending (0: none); read as one
                               strided 1x1 average (both alike), cached in materialized */
} ox_bind;

/* A dnal tensor of the network (value 0 is the input). */
typedef struct ox_value {
    int ndims;       /* 4, or 2 for a linear's output */
    int64_t c, h, w;
    int producer;    /* op index; -1: the input */
} ox_value;

typedef enum ox_kind {
    OX_CONV, OX_BN, OX_RELU, OX_RELU6, OX_MAXPOOL, OX_AVGPOOL, OX_GAP, OX_LINEAR, OX_ADD,
    OX_PLACE /* scatter-add: in[0]'s channel k at idx[k] of out_c, on in[1] or zeros */
} ox_kind;

typedef struct ox_op {
    ox_kind kind;
    char name[64];      /* the dnal layer */
    const char *node;   /* the ONNX node it came from (messages, model.no_gate) */
    const char *op_type;
    int n_in, in[2], out;
    int64_t out_c, kernel, stride, pad, groups;
    int bias;
    int w, b;               /* conv and linear: constants (indices; -1: none) */
    int w_transposed;       /* linear: w is (in, out) (MatMul, Gemm transB=0) */
    int scale, shift, mean, var; /* BN */
    int64_t *idx;           /* OX_PLACE */
    /* the gate plan (onnx_gates.c), for convs */
    int gate_at;            /* the op whose output the gate follows (its BN, or the conv); -1: none */
    char gate[64];          /* the gate layer's name */
    const char *why;        /* ungated: the reason */
} ox_op;

typedef struct ox_graph {
    const char *path;
    unsigned char *bytes;
    size_t len;
    Onnx__ModelProto *model;
    int64_t opset;
    ox_const *consts;
    int n_consts, cap_consts;
    ox_bind *binds;
    int n_binds, cap_binds;
    int *table;             /* open-addressing hash of binds by name */
    int table_size;
    ox_value *values;
    int n_values, cap_values;
    ox_op *ops;
    int n_ops, cap_ops;
    int64_t in_c, size, classes; /* the input (1 x in_c x size x size) and the logits */
    int output;             /* the logits' value */
    int64_t batch;          /* the file's batch, 0 if dynamic */
} ox_graph;

/* onnx_graph.c */
ox_graph *ox_read(const char *path);
void ox_free(ox_graph *g);
_Noreturn void ox_refuse(const ox_graph *g, const Onnx__NodeProto *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
_Noreturn void ox_bad(const ox_graph *g, const Onnx__NodeProto *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
ox_bind *ox_find(ox_graph *g, const char *name);
ox_bind *ox_bind_new(ox_graph *g, const Onnx__NodeProto *n, const char *name);
/* a tensor of the file into a constant (checked: type, dims, data length) */
int ox_const_from(ox_graph *g, const Onnx__TensorProto *t, const char *what);
int ox_const_new(ox_graph *g, int dtype, int ndims, const int64_t *dims);
double ox_at(const ox_const *c, int64_t i);
/* entry i of c as an integer in [lo, hi], else exit 2 naming the node and
 * `what` (a file's value outside int64's range must never reach a cast) */
int64_t ox_at_int(const ox_graph *g, const Onnx__NodeProto *n, const ox_const *c, int64_t i,
                  int64_t lo, int64_t hi, const char *what);
void ox_floats(const ox_const *c, float *out);
int ox_value_new(ox_graph *g, int ndims, int64_t c, int64_t h, int64_t w);
ox_op *ox_op_new(ox_graph *g, ox_kind kind, const Onnx__NodeProto *n);

/* onnx_values.c, onnx_ops.c, onnx_place.c: converting the nodes */
typedef struct ox_ctx {
    ox_graph *g;
    const Onnx__GraphProto *gr;
    size_t i;        /* the node being converted */
    char *absorbed;  /* nodes done by an earlier one (MatMul's Add) */
} ox_ctx;
void ox_set_name(ox_graph *g, ox_op *op, const char *weight, const Onnx__NodeProto *n, size_t i);
/* input k of node n (exit 2 if nothing made it); ox_input runs pending Slices */
ox_bind ox_input_raw(ox_ctx *c, const Onnx__NodeProto *n, size_t k);
ox_bind ox_input(ox_ctx *c, const Onnx__NodeProto *n, size_t k);
/* input k as a constant (NULL if absent; refused if computed) and its index */
const ox_const *ox_constant(ox_ctx *c, const Onnx__NodeProto *n, size_t k, const char *what);
int ox_const_index(ox_ctx *c, const Onnx__NodeProto *n, size_t k);
/* a placement's own tensor (a scatter-add into zeros) */
int ox_materialize(ox_ctx *c, const Onnx__NodeProto *n, const char *name);
/* input k as a dnal tensor; flat: whether Flatten or Reshape made it */
int ox_activation(ox_ctx *c, const Onnx__NodeProto *n, size_t k, int allow_flat, int *flat);
void ox_bind_value(ox_ctx *c, const Onnx__NodeProto *n, size_t k, int value, int flat);
/* output 0 names what input 0 names */
void ox_alias(ox_ctx *c, const Onnx__NodeProto *n, int flat);
void ox_pad(ox_ctx *c, const Onnx__NodeProto *n);
void ox_gather(ox_ctx *c, const Onnx__NodeProto *n);
void ox_slice(ox_ctx *c, const Onnx__NodeProto *n);
void ox_add(ox_ctx *c, const Onnx__NodeProto *n);

/* onnx_ops.c: every node of the graph into ops (ox_read calls it) */
void ox_convert(ox_graph *g);
/* onnx_fold.c: a node over constants only into a constant; 0 if its
 * operator is not one dnal folds */
int ox_fold(ox_graph *g, const Onnx__NodeProto *n);
const Onnx__AttributeProto *ox_attr(const Onnx__NodeProto *n, const char *name);
int64_t ox_attr_int(const ox_graph *g, const Onnx__NodeProto *n, const char *name, int64_t dflt);

/* onnx_gates.c: the gate of every conv, or why it has none; refuses a
 * graph the rule cannot gate safely */
void ox_plan_gates(ox_graph *g, const char *no_gate);

#endif
