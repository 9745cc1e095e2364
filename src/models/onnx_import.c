/* model.name=onnx: the network of an ONNX file (docs/design.md, "ONNX"):
 * the file read and checked (onnx_graph.c, onnx_ops.c), the gates placed
 * (onnx_gates.c), the layers added in the graph's order with each gate
 * after its BN, the softmax cross-entropy on the logits; the file's
 * initializers as the starting weights; the plan dnal info prints. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "builder.h"
#include "onnx_internal.h"

/* the file, checked; sha256 ("" or NULL: not checked) */
static ox_graph *read_checked(const char *path, const char *sha256)
{
    if (!path || !*path)
        dnal_fatal(DNAL_EXIT_USAGE, "model.name=onnx needs model.path=FILE.onnx");
    if (sha256 && *sha256) {
        char have[DNAL_SHA256_HEX];
        int err = dnal_sha256_file(path, have);
        if (err)
            dnal_fatal(DNAL_EXIT_DATA, "model.path %s: cannot read: %s", path, strerror(err));
        if (strcmp(have, sha256))
            dnal_fatal(DNAL_EXIT_DATA, "model.path %s: its SHA-256 is %s, but the network was made "
                       "from a file with %s (the file changed?)", path, have, sha256);
    }
    return ox_read(path);
}

/* the same, its gates planned */
static ox_graph *read_planned(const char *path, const char *sha256, const char *no_gate)
{
    ox_graph *g = read_checked(path, sha256);
    ox_plan_gates(g, no_gate);
    return g;
}

void dnal_onnx_shape(const char *path, const char *no_gate, int64_t *in_channels,
                     int64_t *image_size, int64_t *classes)
{
    ox_graph *g = read_planned(path, NULL, no_gate);
    *in_channels = g->in_c;
    *image_size = g->size;
    *classes = g->classes;
    ox_free(g);
}

void dnal_model_resolve(dnal_model_cfg *cfg)
{
    if (strcmp(cfg->name, DNAL_MODEL_ONNX))
        return;
    char abs[PATH_MAX];
    if (!cfg->path[0])
        dnal_fatal(DNAL_EXIT_USAGE, "model.name=onnx needs model.path=FILE.onnx");
    if (!realpath(cfg->path, abs))
        dnal_fatal(DNAL_EXIT_DATA, "model.path %s: %s", cfg->path, strerror(errno));
    if (strlen(abs) >= sizeof cfg->path)
        dnal_fatal(DNAL_EXIT_USAGE, "model.path %s: the absolute path is too long", cfg->path);
    snprintf(cfg->path, sizeof cfg->path, "%s", abs);
    int err = dnal_sha256_file(cfg->path, cfg->sha256);
    if (err)
        dnal_fatal(DNAL_EXIT_DATA, "model.path %s: cannot read: %s", cfg->path, strerror(err));
}

typedef struct emit_arg {
    const ox_graph *g;
    int *gate_of; /* per op: the conv whose gate follows its output, -1 */
} emit_arg;

static void emit_layers(dnal_net *net, void *arg)
{
    const emit_arg *e = arg;
    const ox_graph *g = e->g;
    dnal_tensor **t = dnal_calloc(sizeof *t * (size_t)(g->n_values + 1));
    t[0] = net->input;
    for (int i = 0; i < g->n_ops; i++) {
        const ox_op *op = &g->ops[i];
        dnal_tensor *x = t[op->in[0]], *y = NULL;
        switch (op->kind) {
        case OX_CONV: {
            dnal_conv_cfg c = {.out_c = op->out_c, .kernel = op->kernel, .stride = op->stride,
                               .pad = op->pad, .groups = op->groups, .bias = op->bias};
            y = dnal_net_conv(net, op->name, x, &c);
            break;
        }
        case OX_BN: y = dnal_net_bn(net, op->name, x); break;
        case OX_RELU: y = dnal_net_relu(net, op->name, x, 0); break;
        case OX_RELU6: y = dnal_net_relu(net, op->name, x, 6); break;
        case OX_MAXPOOL: case OX_AVGPOOL:
            y = dnal_net_pool(net, op->name, op->kind == OX_MAXPOOL ? DNAL_MAXPOOL : DNAL_AVGPOOL, x,
                              op->kernel, op->stride, op->pad);
            break;
        case OX_GAP: y = dnal_net_gap(net, op->name, x); break;
        case OX_LINEAR: y = dnal_net_linear(net, op->name, x, op->out_c, op->bias); break;
        case OX_ADD: y = dnal_net_sum(net, op->name, x, t[op->in[1]]); break;
        case OX_PLACE:
            y = dnal_net_scatter_add(net, op->name, x, op->n_in == 2 ? t[op->in[1]] : NULL, op->out_c,
                                     op->idx);
            break;
        }
        if (e->gate_of[i] >= 0)
            y = dnal_net_gate(net, g->ops[e->gate_of[i]].gate, y);
        t[op->out] = y;
    }
    dnal_net_softmax_ce(net, dnal_net_find(net, "loss") ? "loss.dnal" : "loss", t[g->output]);
    free(t);
}

dnal_net *onnx_model_build(const dnal_ctx *ctx, const dnal_model_cfg *cfg)
{
    ox_graph *g = read_planned(cfg->path, cfg->sha256, cfg->no_gate);
    if (g->in_c != cfg->in_channels || g->size != cfg->image_size || g->classes != cfg->classes)
        dnal_fatal(DNAL_EXIT_USAGE, "model.path %s takes %lldx%lldx%lld images and gives %lld "
                   "classes; the data are %lldx%lldx%lld images of %lld classes", g->path,
                   (long long)g->in_c, (long long)g->size, (long long)g->size, (long long)g->classes,
                   (long long)cfg->in_channels, (long long)cfg->image_size,
                   (long long)cfg->image_size, (long long)cfg->classes);
    if (cfg->width != 1.0)
        dnal_fatal(DNAL_EXIT_USAGE, "model.width=%g: an ONNX file fixes its widths (model.width=1)",
                   cfg->width);
    emit_arg e = {g, dnal_alloc(sizeof(int) * (size_t)(g->n_ops + 1))};
    for (int i = 0; i < g->n_ops; i++)
        e.gate_of[i] = -1;
    for (int i = 0; i < g->n_ops; i++)
        if (g->ops[i].gate_at >= 0)
            e.gate_of[g->ops[i].gate_at] = i;
    int64_t input[4] = {cfg->batch, g->in_c, g->size, g->size};
    dnal_net *net = dnal_net_build(ctx, input, emit_layers, &e);
    free(e.gate_of);
    ox_free(g);
    return net;
}

/* a constant of the file into a layer's parameter k (count checked) */
static void copy_param(const ox_graph *g, dnal_net *net, const dnal_layer *l, int k, int cst,
                       int transposed)
{
    const ox_const *c = &g->consts[cst];
    float *dst = dnal_net_param(net, l, k);
    DNAL_ASSERT((size_t)c->count == l->param[k].count);
    if (!transposed) {
        ox_floats(c, dst);
        return;
    }
    int64_t rows = c->dims[0], cols = c->dims[1]; /* (in, out) into (out, in) */
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            dst[j * rows + i] = (float)ox_at(c, i * cols + j);
}

void dnal_model_start(dnal_net *net, const dnal_model_cfg *cfg, uint64_t seed)
{
    dnal_model_init(net, seed);
    if (strcmp(cfg->name, DNAL_MODEL_ONNX))
        return;
    ox_graph *g = read_checked(cfg->path, cfg->sha256);
    for (int i = 0; i < g->n_ops; i++) {
        const ox_op *op = &g->ops[i];
        if (op->kind != OX_CONV && op->kind != OX_BN && op->kind != OX_LINEAR)
            continue;
        const dnal_layer *l = dnal_net_find(net, op->name);
        DNAL_ASSERT(l != NULL);
        if (op->kind == OX_BN) {
            copy_param(g, net, l, 0, op->scale, 0);
            copy_param(g, net, l, 1, op->shift, 0);
            size_t c = l->n_stats / 2;
            float *stats = net->stats + l->stats_off;
            DNAL_ASSERT((size_t)g->consts[op->mean].count == c);
            ox_floats(&g->consts[op->mean], stats);
            ox_floats(&g->consts[op->var], stats + c);
            continue;
        }
        copy_param(g, net, l, 0, op->w, op->kind == OX_LINEAR && op->w_transposed);
        if (op->bias)
            copy_param(g, net, l, 1, op->b, 0);
    }
    ox_free(g);
}

/* ------------------------------------------------------------- the plan */

static const ox_op *op_named(const ox_graph *g, const char *name)
{
    for (int i = 0; g && i < g->n_ops; i++)
        if (!strcmp(g->ops[i].name, name))
            return &g->ops[i];
    return NULL;
}

void dnal_model_plan(const dnal_ctx *ctx, const dnal_model_cfg *cfg, FILE *out)
{
    int onnx = !strcmp(cfg->name, DNAL_MODEL_ONNX);
    ox_graph *g = onnx ? read_planned(cfg->path, NULL, cfg->no_gate) : NULL;
    dnal_model_cfg m = *cfg;
    if (g) {
        m.in_channels = g->in_c;
        m.image_size = g->size;
        m.classes = g->classes;
    }
    dnal_ctx plan = *ctx;
    plan.params_only = 1;
    dnal_net *net = dnal_model_build(&plan, &m);
    fprintf(out, "plan model=%s input=%lldx%lldx%lld classes=%lld", m.name, (long long)m.in_channels,
            (long long)m.image_size, (long long)m.image_size, (long long)m.classes);
    if (g)
        fprintf(out, " opset=%lld path=%s", (long long)g->opset, m.path);
    fprintf(out, "\n");
    size_t gated = 0;
    int gates = 0;
    for (int i = 0; i < net->n_layers; i++) {
        const dnal_layer *l = net->layers[i];
        if (l->kind == DNAL_GATE) {
            gates++;
            gated += l->n_gates;
        }
        if (l->kind != DNAL_CONV && l->kind != DNAL_LINEAR)
            continue;
        const dnal_tensor *x = l->in[0], *y = l->out;
        double params = (double)l->param[0].count + (l->n_params == 2 ? (double)l->param[1].count : 0);
        double flops = l->kind == DNAL_LINEAR ? (double)l->param[0].count
                                              : (double)l->param[0].count * (double)(y->h * y->w);
        const ox_op *op = op_named(g, l->name);
        fprintf(out, "plan layer=%s kind=%s in=%lld out=%lld", l->name, dnal_layer_kind_name(l->kind),
                (long long)x->c, (long long)y->c);
        if (l->kind == DNAL_CONV)
            fprintf(out, " kernel=%lld stride=%lld groups=%lld", (long long)l->kernel,
                    (long long)l->stride, (long long)l->groups);
        fprintf(out, " gate=%s", y->gate >= 0 ? net->layers[y->gate]->name : "-");
        if (op && op->why && l->kind == DNAL_CONV && y->gate < 0)
            fprintf(out, " why=\"%s\"", op->why);
        fprintf(out, " flops=%.0f params=%.0f", flops, params);
        if (op)
            fprintf(out, " node=%s", op->node);
        fprintf(out, "\n");
    }
    dnal_cost cost = dnal_net_cost(net, NULL);
    fprintf(out, "plan gates=%d gated_channels=%zu flops=%.0f params=%.0f\n", gates, gated, cost.flops,
            cost.params);
    dnal_net_destroy(net);
    ox_free(g);
}
