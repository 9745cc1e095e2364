/* An ONNX file read and checked: the protobuf unpacked, the opset, every
 * initializer's type, dims and data length, the one image input (only the
 * batch dynamic) and the one output, then the nodes converted (onnx_ops.c).
 * Everything a name, size or index of the file says is checked before it is
 * used. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "onnx_internal.h"

enum { MAX_FILE = 1 << 30 }; /* protobuf-c's own limit is 2 GiB */

static void vreport(const ox_graph *g, const Onnx__NodeProto *n, int code, const char *fmt,
                    va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (n)
        dnal_fatal(code, "%s: node %s (%s): %s", g->path, n->name && *n->name ? n->name : "(unnamed)",
                   n->op_type ? n->op_type : "?", msg);
    dnal_fatal(code, "%s: %s", g->path, msg);
}

void ox_refuse(const ox_graph *g, const Onnx__NodeProto *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(g, n, DNAL_EXIT_USAGE, fmt, ap);
    va_end(ap);
    abort();
}

void ox_bad(const ox_graph *g, const Onnx__NodeProto *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(g, n, DNAL_EXIT_DATA, fmt, ap);
    va_end(ap);
    abort();
}

/* ------------------------------------------------------------- names */

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int *slot(ox_graph *g, const char *name)
{
    int mask = g->table_size - 1;
    for (int i = (int)(hash(name) & (uint64_t)mask);; i = (i + 1) & mask)
        if (g->table[i] < 0 || !strcmp(g->binds[g->table[i]].name, name))
            return &g->table[i];
}

ox_bind *ox_find(ox_graph *g, const char *name)
{
    if (!name || !*name)
        return NULL;
    int *s = slot(g, name);
    return *s < 0 ? NULL : &g->binds[*s];
}

ox_bind *ox_bind_new(ox_graph *g, const Onnx__NodeProto *n, const char *name)
{
    if (!name || !*name)
        ox_bad(g, n, "an output without a name");
    if (ox_find(g, name))
        ox_bad(g, n, "value %s is made twice (the graph is not in single assignment form)", name);
    if (g->n_binds == g->cap_binds) {
        g->cap_binds *= 2;
        g->binds = dnal_realloc(g->binds, sizeof *g->binds * (size_t)g->cap_binds);
    }
    if (2 * (g->n_binds + 1) > g->table_size) { /* rehash at half full */
        g->table_size *= 2;
        g->table = dnal_realloc(g->table, sizeof *g->table * (size_t)g->table_size);
        memset(g->table, 0xff, sizeof *g->table * (size_t)g->table_size);
        for (int i = 0; i < g->n_binds; i++)
            *slot(g, g->binds[i].name) = i;
    }
    ox_bind *b = &g->binds[g->n_binds];
    *b = (ox_bind){.name = name, .materialized = -1};
    *slot(g, name) = g->n_binds++;
    return b;
}

/* ------------------------------------------------------------- constants */

static size_t elem_size(int dtype)
{
    switch (dtype) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: return 4;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return 8;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: return 1;
    default: return 0;
    }
}

static ox_const *const_slot(ox_graph *g)
{
    if (g->n_consts == g->cap_consts) {
        g->cap_consts *= 2;
        g->consts = dnal_realloc(g->consts, sizeof *g->consts * (size_t)g->cap_consts);
    }
    ox_const *c = &g->consts[g->n_consts];
    memset(c, 0, sizeof *c);
    return c;
}

int ox_const_from(ox_graph *g, const Onnx__TensorProto *t, const char *what)
{
    const char *name = t->name && *t->name ? t->name : what;
    int dtype = t->has_data_type ? t->data_type : 0;
    size_t es = elem_size(dtype);
    if (!es)
        ox_refuse(g, NULL, "tensor %s has data type %d; dnal reads FLOAT, DOUBLE, INT32, INT64 and BOOL",
                  name, dtype);
    if (t->n_external_data || (t->has_data_location && t->data_location))
        ox_refuse(g, NULL, "tensor %s keeps its data in an external file; dnal reads data inside "
                  "the .onnx file (save with save_as_external_data=False)", name);
    if (t->segment)
        ox_refuse(g, NULL, "tensor %s is segmented; dnal does not read segments", name);
    if (t->n_dims > OX_MAX_DIMS)
        ox_refuse(g, NULL, "tensor %s has %zu dimensions (at most %d)", name, t->n_dims, OX_MAX_DIMS);
    ox_const *c = const_slot(g);
    c->dtype = dtype;
    c->ndims = (int)t->n_dims;
    c->count = 1;
    c->t = t;
    for (size_t d = 0; d < t->n_dims; d++) {
        if (t->dims[d] < 0 || (t->dims[d] > 0 && c->count > (INT64_C(1) << 40) / t->dims[d]))
            ox_bad(g, NULL, "tensor %s: dimension %zu is %lld", name, d, (long long)t->dims[d]);
        c->dims[d] = t->dims[d];
        c->count *= t->dims[d];
    }
    size_t have;
    if (t->has_raw_data)
        have = t->raw_data.len / es == (size_t)c->count && t->raw_data.len % es == 0 ? (size_t)c->count
                                                                                        : (size_t)-1;
    else if (dtype == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        have = t->n_float_data;
    else if (dtype == ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
        have = t->n_int64_data;
    else if (dtype == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE)
        have = t->n_double_data;
    else
        have = t->n_int32_data;
    if (have != (size_t)c->count)
        ox_bad(g, NULL, "tensor %s: its dims make %lld values, its data holds %s", name,
               (long long)c->count,
               t->has_raw_data ? "raw bytes of another length" : "another number");
    if (dtype == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || dtype == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE)
        for (int64_t i = 0; i < c->count; i++)
            if (!isfinite(ox_at(c, i)))
                ox_bad(g, NULL, "tensor %s[%lld] = %g is not finite", name, (long long)i, ox_at(c, i));
    return g->n_consts++;
}

int ox_const_new(ox_graph *g, int dtype, int ndims, const int64_t *dims)
{
    ox_const *c = const_slot(g);
    c->dtype = dtype;
    c->ndims = ndims;
    c->count = 1;
    for (int d = 0; d < ndims; d++) {
        c->dims[d] = dims[d];
        c->count *= dims[d];
    }
    DNAL_ASSERT(c->count >= 0 && c->count <= (1 << 24));
    c->own = dnal_calloc(sizeof *c->own * (size_t)(c->count + 1));
    return g->n_consts++;
}

double ox_at(const ox_const *c, int64_t i)
{
    DNAL_ASSERT(i >= 0 && i < c->count);
    if (c->own)
        return c->own[i];
    const Onnx__TensorProto *t = c->t;
    if (t->has_raw_data) { /* little-endian, as the format says (x86-64, aarch64) */
        const unsigned char *p = t->raw_data.data + (size_t)i * elem_size(c->dtype);
        float f;
        double d;
        int32_t i32;
        int64_t i64;
        switch (c->dtype) {
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: memcpy(&f, p, 4); return f;
        case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: memcpy(&d, p, 8); return d;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: memcpy(&i32, p, 4); return i32;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: memcpy(&i64, p, 8); return (double)i64;
        default: return *p != 0;
        }
    }
    switch (c->dtype) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: return t->float_data[i];
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return t->double_data[i];
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return (double)t->int64_data[i];
    default: return t->int32_data[i];
    }
}

int64_t ox_at_int(const ox_graph *g, const Onnx__NodeProto *n, const ox_const *c, int64_t i,
                  int64_t lo, int64_t hi, const char *what)
{
    double v = ox_at(c, i);
    if (!(v >= (double)lo && v <= (double)hi))
        ox_bad(g, n, "%s %g is out of range [%lld, %lld]", what, v, (long long)lo, (long long)hi);
    return (int64_t)v;
}

void ox_floats(const ox_const *c, float *out)
{
    if (!c->own && c->t->has_raw_data && c->dtype == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
        memcpy(out, c->t->raw_data.data, sizeof *out * (size_t)c->count);
        return;
    }
    for (int64_t i = 0; i < c->count; i++)
        out[i] = (float)ox_at(c, i);
}

/* ------------------------------------------------------------- values, ops */

int ox_value_new(ox_graph *g, int ndims, int64_t c, int64_t h, int64_t w)
{
    if (c < 1 || h < 1 || w < 1 || c > (1 << 24) || c * h * w > (INT64_C(1) << 28))
        ox_bad(g, NULL, "a layer would output %lld x %lld x %lld values per image (at most 2^28)",
               (long long)c, (long long)h, (long long)w);
    if (g->n_values == g->cap_values) {
        g->cap_values = g->cap_values ? 2 * g->cap_values : 64;
        g->values = dnal_realloc(g->values, sizeof *g->values * (size_t)g->cap_values);
    }
    g->values[g->n_values] = (ox_value){ndims, c, h, w, g->n_ops - 1}; /* the op made last */
    return g->n_values++;
}

ox_op *ox_op_new(ox_graph *g, ox_kind kind, const Onnx__NodeProto *n)
{
    if (g->n_ops == g->cap_ops) {
        g->cap_ops = g->cap_ops ? 2 * g->cap_ops : 64;
        g->ops = dnal_realloc(g->ops, sizeof *g->ops * (size_t)g->cap_ops);
    }
    ox_op *op = &g->ops[g->n_ops++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->node = n && n->name && *n->name ? n->name : "(unnamed)";
    op->op_type = n ? n->op_type : "";
    op->in[0] = op->in[1] = op->out = op->gate_at = -1;
    op->w = op->b = op->scale = op->shift = op->mean = op->var = -1;
    op->groups = 1;
    return op;
}

/* ------------------------------------------------------------- the file */

static unsigned char *read_file(const char *path, size_t *len)
{
    /* O_NONBLOCK: a FIFO would wait for a writer at open */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        dnal_fatal(DNAL_EXIT_DATA, "model.path %s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        dnal_fatal(DNAL_EXIT_DATA, "model.path %s: not a regular file", path);
    FILE *f = fdopen(fd, "rb");
    if (!f)
        dnal_fatal(DNAL_EXIT_DATA, "model.path %s: cannot open: %s", path, strerror(errno));
    if (st.st_size <= 0 || st.st_size > MAX_FILE)
        dnal_fatal(DNAL_EXIT_DATA, "model.path %s: %lld bytes is not the size of an ONNX model "
                   "dnal reads (1 byte to 1 GiB)", path, (long long)st.st_size);
    *len = (size_t)st.st_size;
    unsigned char *b = dnal_alloc_input(*len, 1, MAX_FILE, path, "the ONNX file");
    if (fread(b, 1, *len, f) != *len)
        dnal_fatal(DNAL_EXIT_DATA, "model.path %s: cannot read %zu bytes", path, *len);
    fclose(f);
    return b;
}

static void check_opset(ox_graph *g)
{
    const Onnx__ModelProto *m = g->model;
    g->opset = -1;
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[i];
        if ((!o->domain || !*o->domain || !strcmp(o->domain, "ai.onnx")) && o->has_version)
            g->opset = o->version;
    }
    if (g->opset < 11 || g->opset > 17)
        ox_refuse(g, NULL, "opset %lld of the default domain; dnal imports opsets 11 to 17%s",
                  (long long)g->opset, g->opset < 0 ? " (the file names none)" : "");
}

/* the dims of a graph input or output; dynamic ones (dim_param, or none) are -1 */
static int value_dims(const ox_graph *g, const Onnx__ValueInfoProto *v, int64_t *dims)
{
    const Onnx__TypeProto *t = v->type;
    if (!t || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !t->tensor_type->shape)
        ox_refuse(g, NULL, "graph value %s is not a tensor of known rank", v->name);
    if (t->tensor_type->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        ox_refuse(g, NULL, "graph value %s has element type %d; dnal takes FLOAT", v->name,
                  t->tensor_type->elem_type);
    const Onnx__TensorShapeProto *s = t->tensor_type->shape;
    if (s->n_dim > OX_MAX_DIMS)
        ox_refuse(g, NULL, "graph value %s has rank %zu", v->name, s->n_dim);
    for (size_t d = 0; d < s->n_dim; d++) {
        const Onnx__TensorShapeProto__Dimension *dim = s->dim[d];
        int fixed = dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        if (fixed && (dim->dim_value < 1 || dim->dim_value > (1 << 24)))
            ox_bad(g, NULL, "graph value %s: dimension %zu is %lld", v->name, d,
                   (long long)dim->dim_value);
        dims[d] = fixed ? dim->dim_value : -1;
    }
    return (int)s->n_dim;
}

static void read_input(ox_graph *g)
{
    const Onnx__GraphProto *gr = g->model->graph;
    const Onnx__ValueInfoProto *in = NULL;
    for (size_t i = 0; i < gr->n_input; i++) {
        if (!gr->input[i]->name || !*gr->input[i]->name)
            ox_bad(g, NULL, "graph input %zu has no name", i);
        if (ox_find(g, gr->input[i]->name)) /* an initializer listed as input (IR < 4) */
            continue;
        if (in)
            ox_refuse(g, NULL, "the graph takes inputs %s and %s; dnal takes one image input",
                      in->name, gr->input[i]->name);
        in = gr->input[i];
    }
    if (!in)
        ox_bad(g, NULL, "the graph has no input");
    int64_t d[OX_MAX_DIMS];
    int nd = value_dims(g, in, d);
    if (nd != 4)
        ox_refuse(g, NULL, "input %s has rank %d; dnal takes N x C x H x W images", in->name, nd);
    static const char *axis[4] = {"N", "C", "H", "W"};
    for (int k = 1; k < 4; k++)
        if (d[k] < 0)
            ox_refuse(g, NULL, "input %s: dimension %s is dynamic; only the batch may be (export "
                      "with dynamic_axes for axis 0 only)", in->name, axis[k]);
    if (d[2] != d[3] || d[2] > 4096)
        ox_refuse(g, NULL, "input %s is %lldx%lld; dnal takes square images of at most 4096 pixels",
                  in->name, (long long)d[2], (long long)d[3]);
    g->batch = d[0] > 0 ? d[0] : 0;
    g->in_c = d[1];
    g->size = d[2];
    ox_bind *b = ox_bind_new(g, NULL, in->name);
    b->kind = OX_VALUE;
    b->value = ox_value_new(g, 4, d[1], d[2], d[3]);
    g->values[b->value].producer = -1;
}

static void read_output(ox_graph *g)
{
    const Onnx__GraphProto *gr = g->model->graph;
    if (gr->n_output != 1)
        ox_refuse(g, NULL, "the graph has %zu outputs; dnal takes one (the logits)", gr->n_output);
    const Onnx__ValueInfoProto *out = gr->output[0];
    if (!out->name || !*out->name)
        ox_bad(g, NULL, "the graph's output has no name");
    ox_bind *b = ox_find(g, out->name);
    if (!b)
        ox_bad(g, NULL, "output %s is made by no node", out->name);
    int64_t d[OX_MAX_DIMS];
    int nd = value_dims(g, out, d);
    if (b->kind != OX_VALUE || g->values[b->value].ndims != 2 || g->values[b->value].producer < 0 ||
        g->ops[g->values[b->value].producer].kind != OX_LINEAR)
        ox_refuse(g, NULL, "output %s is not the logits of a Gemm or MatMul (N x classes); dnal "
                  "adds the softmax cross-entropy itself", out->name);
    if (nd != 2 || (d[1] > 0 && d[1] != g->values[b->value].c))
        ox_bad(g, NULL, "output %s is declared with another shape than its Gemm makes (%lld classes)",
               out->name, (long long)g->values[b->value].c);
    g->output = b->value;
    g->classes = g->values[b->value].c;
}

ox_graph *ox_read(const char *path)
{
    ox_graph *g = dnal_calloc(sizeof *g);
    g->path = path;
    g->bytes = read_file(path, &g->len);
    g->model = onnx__model_proto__unpack(NULL, g->len, g->bytes);
    if (!g->model)
        ox_bad(g, NULL, "not an ONNX model (the protobuf does not parse as a ModelProto)");
    if (!g->model->graph)
        ox_bad(g, NULL, "the model has no graph");
    check_opset(g);
    g->cap_consts = g->cap_binds = 64;
    g->consts = dnal_alloc(sizeof *g->consts * (size_t)g->cap_consts);
    g->binds = dnal_alloc(sizeof *g->binds * (size_t)g->cap_binds);
    g->table_size = 128;
    g->table = dnal_alloc(sizeof *g->table * (size_t)g->table_size);
    memset(g->table, 0xff, sizeof *g->table * (size_t)g->table_size);
    const Onnx__GraphProto *gr = g->model->graph;
    for (size_t i = 0; i < gr->n_initializer; i++) {
        char what[48];
        snprintf(what, sizeof what, "initializer %zu", i);
        int c = ox_const_from(g, gr->initializer[i], what);
        ox_bind *b = ox_bind_new(g, NULL, gr->initializer[i]->name);
        b->kind = OX_CONST;
        b->cst = c;
    }
    if (gr->n_sparse_initializer)
        ox_refuse(g, NULL, "sparse initializers are not supported");
    read_input(g);
    ox_convert(g);
    read_output(g);
    return g;
}

void ox_free(ox_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_consts; i++)
        free(g->consts[i].own);
    for (int i = 0; i < g->n_binds; i++)
        free(g->binds[i].idx);
    for (int i = 0; i < g->n_ops; i++)
        free(g->ops[i].idx);
    free(g->consts);
    free(g->binds);
    free(g->table);
    free(g->values);
    free(g->ops);
    if (g->model)
        onnx__model_proto__free_unpacked(g->model, NULL);
    free(g->bytes);
    free(g);
}
