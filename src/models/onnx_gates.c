/* The zoo's gate placement (docs/design.md, "Gate placement") applied to
 * any graph of ops:
 *
 *  - every convolution gets a gate after its BN (after the conv itself when
 *    no BN follows it), unless
 *  - model.no_gate names it (or its BN);
 *  - it is grouped and not depthwise (its channels are tied to its groups);
 *  - its output reaches, through BN, activations, pooling and channel
 *    placement only, the shortcut side of a sum: the residual stream stays
 *    whole. Of a sum's two inputs the shortcut is the one with fewer convs
 *    since their nearest common ancestor (the identity: 0; a projection: 1;
 *    the branch: 2 or 3); with as many on both sides neither is;
 *  - it feeds (through BN and activations only) a depthwise conv that has a
 *    gate: that gate governs its channels too (MobileNetV2's expansion).
 *
 * A gate governs the channels back to the conv that mixes them (through a
 * depthwise conv, to the expansion), so each of those tensors must feed
 * nothing else, the chain must end at a dense conv (not at the input or a
 * sum), and no grouped conv may read channels a gate can remove: a graph
 * where the rule places a gate that breaks these is refused, naming the
 * node and model.no_gate. */
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

typedef struct planner {
    ox_graph *g;
    int *first, *users;   /* value v is read by ops users[first[v] .. first[v+1]) */
    char (*shortcut)[2];  /* per op: input k is a sum's shortcut */
    int *dist_a, *dist_b;
} planner;

static int is_dw(const ox_graph *g, const ox_op *op)
{
    return op->kind == OX_CONV && op->groups > 1 && op->groups == g->values[op->in[0]].c &&
           op->out_c == op->groups;
}

static int is_sum(const ox_op *op)
{
    return op->kind == OX_ADD || (op->kind == OX_PLACE && op->n_in == 2);
}

/* channel c of the output is channel c of in[0] (dnal_layer_keeps_channels) */
static int keeps_channels(const ox_graph *g, const ox_op *op)
{
    switch (op->kind) {
    case OX_BN: case OX_RELU: case OX_RELU6: case OX_MAXPOOL: case OX_AVGPOOL: case OX_GAP:
        return 1;
    default:
        return is_dw(g, op);
    }
}

static int n_users(const planner *p, int v)
{
    return p->first[v + 1] - p->first[v];
}

static void index_users(planner *p)
{
    ox_graph *g = p->g;
    p->first = dnal_calloc(sizeof *p->first * (size_t)(g->n_values + 2));
    for (int i = 0; i < g->n_ops; i++)
        for (int k = 0; k < g->ops[i].n_in; k++)
            p->first[g->ops[i].in[k] + 2]++;
    for (int v = 0; v < g->n_values; v++)
        p->first[v + 2] += p->first[v + 1];
    p->users = dnal_alloc(sizeof *p->users * (size_t)(p->first[g->n_values + 1] + 1));
    for (int i = 0; i < g->n_ops; i++)
        for (int k = 0; k < g->ops[i].n_in; k++)
            p->users[p->first[g->ops[i].in[k] + 1]++] = i;
}

/* convs between every value and `target` (INT_MAX: not an ancestor) */
static void conv_dist(const planner *p, int target, int *dist)
{
    const ox_graph *g = p->g;
    for (int v = 0; v < g->n_values; v++)
        dist[v] = 1 << 30;
    dist[target] = 0;
    for (int i = g->n_ops - 1; i >= 0; i--) {
        const ox_op *op = &g->ops[i];
        if (dist[op->out] >= 1 << 30)
            continue;
        int d = dist[op->out] + (op->kind == OX_CONV || op->kind == OX_LINEAR);
        for (int k = 0; k < op->n_in; k++)
            if (d < dist[op->in[k]])
                dist[op->in[k]] = d;
    }
}

static void find_shortcuts(planner *p)
{
    ox_graph *g = p->g;
    for (int i = 0; i < g->n_ops; i++) {
        const ox_op *op = &g->ops[i];
        if (!is_sum(op))
            continue;
        conv_dist(p, op->in[0], p->dist_a);
        conv_dist(p, op->in[1], p->dist_b);
        int fork = -1;
        for (int v = 0; v < g->n_values; v++)
            if (p->dist_a[v] < 1 << 30 && p->dist_b[v] < 1 << 30 &&
                (fork < 0 || p->dist_a[v] + p->dist_b[v] <= p->dist_a[fork] + p->dist_b[fork]))
                fork = v;
        DNAL_ASSERT(fork >= 0); /* the input is an ancestor of everything */
        p->shortcut[i][0] = p->dist_a[fork] < p->dist_b[fork];
        p->shortcut[i][1] = p->dist_b[fork] < p->dist_a[fork];
    }
}

/* the sum whose shortcut side v reaches through non-mixing ops, or -1 */
static int stream_sum(const planner *p, int v, int depth)
{
    const ox_graph *g = p->g;
    for (int u = p->first[v]; u < p->first[v + 1] && depth < 64; u++) {
        int i = p->users[u];
        const ox_op *op = &g->ops[i];
        if (is_sum(op)) {
            for (int k = 0; k < 2; k++)
                if (op->in[k] == v && p->shortcut[i][k])
                    return i;
            continue;
        }
        int passes = op->kind == OX_BN || op->kind == OX_RELU || op->kind == OX_RELU6 ||
                     op->kind == OX_MAXPOOL || op->kind == OX_AVGPOOL || op->kind == OX_PLACE;
        int s = passes ? stream_sum(p, op->out, depth + 1) : -1;
        if (s >= 0)
            return s;
    }
    return -1;
}

/* the depthwise conv that v feeds through a chain of single-reader BN and
 * activations, or -1 */
static int feeds_depthwise(const planner *p, int v)
{
    const ox_graph *g = p->g;
    while (n_users(p, v) == 1) {
        const ox_op *op = &g->ops[p->users[p->first[v]]];
        if (is_dw(g, op))
            return (int)(op - g->ops);
        if (op->kind != OX_BN && op->kind != OX_RELU && op->kind != OX_RELU6)
            return -1;
        v = op->out;
    }
    return -1;
}

static int listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *s = list; s && *s;) {
        size_t len = strcspn(s, ",");
        if (len == n && !strncmp(s, name, n))
            return 1;
        s += len + (s[len] == ',');
    }
    return 0;
}

/* the op whose output a gate of conv i follows: its BN, else the conv */
static int gate_point(const planner *p, int i)
{
    const ox_graph *g = p->g;
    int v = g->ops[i].out;
    if (n_users(p, v) == 1 && g->ops[p->users[p->first[v]]].kind == OX_BN)
        return p->users[p->first[v]];
    return i;
}

/* refuses a gate of conv i at op `at` that would govern a tensor that feeds
 * other layers too, or reach past the conv making the channels */
static void check_governed(const planner *p, int i, int at)
{
    const ox_graph *g = p->g;
    const ox_op *conv = &g->ops[i];
    int v = g->ops[at].out;
    for (int depth = 0;; depth++) {
        int pr = g->values[v].producer;
        if (depth > 0 && n_users(p, v) != 1)
            ox_refuse(g, NULL, "node %s (Conv): its gate would also remove channels of the output "
                      "of %s, which feeds %d layers; leave it ungated with model.no_gate=%s",
                      conv->node, pr >= 0 ? g->ops[pr].node : "the input", n_users(p, v), conv->node);
        if (pr < 0 || (!keeps_channels(g, &g->ops[pr]) && g->ops[pr].kind != OX_CONV))
            ox_refuse(g, NULL, "node %s (Conv): its gate would govern channels of %s (%s), which "
                      "dnal cannot remove; leave it ungated with model.no_gate=%s", conv->node,
                      pr >= 0 ? g->ops[pr].node : "the input",
                      pr >= 0 ? g->ops[pr].op_type : "the network input", conv->node);
        if (!keeps_channels(g, &g->ops[pr])) {
            if (g->ops[pr].groups > 1)
                ox_refuse(g, NULL, "node %s (Conv): its gate would govern the output of the "
                          "grouped convolution %s; leave it ungated with model.no_gate=%s",
                          conv->node, g->ops[pr].node, conv->node);
            return;
        }
        v = g->ops[pr].in[0];
    }
}

static void name_gate(ox_graph *g, ox_op *conv, const ox_op *at)
{
    snprintf(conv->gate, sizeof conv->gate, "%.58s.gate", at->name);
    for (int k = 2;; k++) {
        int taken = 0;
        for (int i = 0; i < g->n_ops; i++)
            taken |= !strcmp(g->ops[i].name, conv->gate) ||
                     (&g->ops[i] != conv && !strcmp(g->ops[i].gate, conv->gate));
        if (!taken)
            return;
        snprintf(conv->gate, sizeof conv->gate, "%.48s.gate%d", at->name, k);
    }
}

/* a grouped conv (or a depthwise one with a multiplier) must read all its
 * channels: no gate may reach its input */
static void check_grouped_inputs(const planner *p)
{
    ox_graph *g = p->g;
    int *gate_of = dnal_alloc(sizeof *gate_of * (size_t)(g->n_values + 1)); /* the conv whose gate may empty v */
    for (int v = 0; v < g->n_values; v++)
        gate_of[v] = -1;
    for (int i = 0; i < g->n_ops; i++) {
        const ox_op *op = &g->ops[i];
        int from = -1;
        if (keeps_channels(g, op))
            from = gate_of[op->in[0]];
        else if (op->kind == OX_ADD)
            from = gate_of[op->in[0]] >= 0 && gate_of[op->in[1]] >= 0 ? gate_of[op->in[0]] : -1;
        else if (op->kind == OX_PLACE)
            from = op->n_in == 2 ? gate_of[op->in[1]] : gate_of[op->in[0]] >= 0 ? gate_of[op->in[0]] : i;
        if (op->kind == OX_CONV && !is_dw(g, op) && op->groups > 1 && gate_of[op->in[0]] >= 0) {
            const ox_op *c = &g->ops[gate_of[op->in[0]]];
            ox_refuse(g, NULL, "node %s (Conv, group=%lld) reads channels that %s may remove, and "
                      "dnal cannot prune a grouped convolution's input; leave %s ungated with "
                      "model.no_gate=%s", op->node, (long long)op->groups,
                      c->kind == OX_CONV ? c->gate : "a channel placement", c->node, c->node);
        }
        for (int j = 0; j < g->n_ops; j++) /* a gated point */
            if (g->ops[j].gate_at == i)
                from = j;
        gate_of[op->out] = from;
    }
    free(gate_of);
}

void ox_plan_gates(ox_graph *g, const char *no_gate)
{
    planner p = {.g = g};
    index_users(&p);
    p.shortcut = dnal_calloc(sizeof *p.shortcut * (size_t)(g->n_ops + 1));
    p.dist_a = dnal_alloc(sizeof *p.dist_a * (size_t)(g->n_values + 1));
    p.dist_b = dnal_alloc(sizeof *p.dist_b * (size_t)(g->n_values + 1));
    find_shortcuts(&p);
    for (const char *s = no_gate; s && *s;) { /* every name must be a conv or its BN */
        size_t len = strcspn(s, ",");
        int found = 0;
        for (int i = 0; i < g->n_ops; i++)
            if ((g->ops[i].kind == OX_CONV || g->ops[i].kind == OX_BN) &&
                ((strlen(g->ops[i].node) == len && !strncmp(g->ops[i].node, s, len)) ||
                 (strlen(g->ops[i].name) == len && !strncmp(g->ops[i].name, s, len))))
                found = 1;
        if (!found)
            dnal_fatal(DNAL_EXIT_USAGE, "model.no_gate: '%.*s' names no Conv or BatchNormalization "
                       "node (nor layer) of %s", (int)len, s, g->path);
        s += len + (s[len] == ',');
    }
    /* depthwise convs first: their gates govern what feeds them */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < g->n_ops; i++) {
            ox_op *op = &g->ops[i];
            if (op->kind != OX_CONV || is_dw(g, op) != (pass == 0))
                continue;
            int at = gate_point(&p, i), sum, dw;
            if (listed(no_gate, op->node) || listed(no_gate, op->name) ||
                listed(no_gate, g->ops[at].node) || listed(no_gate, g->ops[at].name))
                op->why = "model.no_gate";
            else if (op->groups > 1 && !is_dw(g, op))
                op->why = op->groups == g->values[op->in[0]].c ? "depthwise with a channel multiplier"
                                                               : "grouped convolution";
            else if ((sum = stream_sum(&p, g->ops[at].out, 0)) >= 0)
                op->why = "residual stream";
            else if (!is_dw(g, op) && (dw = feeds_depthwise(&p, g->ops[at].out)) >= 0 &&
                     g->ops[dw].gate_at >= 0)
                op->why = "governed by the depthwise gate after it";
            if (op->why)
                continue;
            check_governed(&p, i, at);
            op->gate_at = at;
            name_gate(g, op, &g->ops[at]);
        }
    check_grouped_inputs(&p);
    free(p.first);
    free(p.users);
    free(p.shortcut);
    free(p.dist_a);
    free(p.dist_b);
}
