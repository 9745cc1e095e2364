/* The ProxylessNAS-style supernet (proxyless-supernet): structure (six
 * gated MBConv candidates per edge, summed, identity shortcut where the
 * shape allows), its dense cost against a formula, and candidate removal:
 * after dnal_prune, removed candidates vanish from the compact network,
 * whose logits equal the masked supernet's (pruned gates, inference BN) and
 * whose real cost equals the masked cost; the exported model file reloads to
 * the same logits; the compact network trains (forward and backward); every
 * primitive is a JIT kernel. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dnal/io.h"
#include "dnal/models.h"
#include "dnal/search.h"
#include "tap.h"

enum { EDGES = 21, CANDS = 6 };
static const int kern[CANDS] = {3, 3, 5, 5, 7, 7}, expand[CANDS] = {3, 6, 3, 6, 3, 6};

static uint64_t state = 4242;
static double unif(void)
{
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(state >> 11) / 9007199254740992.0;
}

static dnal_layer *find(const dnal_net *net, const char *fmt, int edge, int cand)
{
    char name[96];
    char cn[16];
    snprintf(cn, sizeof cn, "k%de%d", kern[cand], expand[cand]);
    snprintf(name, sizeof name, fmt, edge, cn);
    return dnal_net_find(net, name);
}

static float *logits(dnal_net *net, const dnal_pass *p, size_t *n)
{
    dnal_net_forward(net, p);
    dnal_tensor *z = net->loss->in[0];
    *n = dnal_tensor_count(z);
    float *out = malloc(sizeof *out * *n);
    dnal_tensor_read(net->ctx, z, 0, out);
    return out;
}

static double max_rel_diff(const float *a, const float *b, size_t n, double *scale)
{
    double diff = 0;
    *scale = 0;
    for (size_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs(a[i] - b[i]));
        *scale = fmax(*scale, fabs(a[i]));
    }
    return diff / fmax(*scale, 1.0);
}

static int64_t div8(double v)
{
    int64_t r = (int64_t)(v + 4) / 8 * 8;
    if (r < 8)
        r = 8;
    if ((double)r < 0.9 * v)
        r += 8;
    return r;
}

/* the dense cost from the plan alone */
static dnal_cost formula(int64_t size, int64_t in_ch, double w, int64_t classes)
{
    static const int plan[6][3] = {{24, 4, 2}, {40, 4, 2}, {80, 4, 2}, {96, 4, 1}, {192, 4, 2}, {320, 1, 1}};
    int imagenet = size >= 64;
    dnal_cost c = {0, 0};
    int64_t hw = imagenet ? (size + 1) / 2 : size, ch = div8(32 * w);
    c.flops += (double)(hw * hw * ch * in_ch * 9);
    c.params += (double)(ch * in_ch * 9 + 2 * ch);
    c.flops += (double)(hw * hw * ch * 9); /* first block: dw, project */
    c.params += (double)(ch * 9 + 2 * ch);
    int64_t c16 = div8(16 * w);
    c.flops += (double)(hw * hw * c16 * ch);
    c.params += (double)(c16 * ch + 2 * c16);
    ch = c16;
    for (int s = 0; s < 6; s++) {
        int64_t out = div8(plan[s][0] * w);
        for (int i = 0; i < plan[s][1]; i++) {
            int stride = i == 0 ? ((!imagenet && s == 0) ? 1 : plan[s][2]) : 1;
            int64_t ohw = stride == 2 ? (hw + 1) / 2 : hw;
            for (int k = 0; k < CANDS; k++) {
                int64_t h = ch * expand[k], k2 = kern[k] * kern[k];
                c.flops += (double)(hw * hw * h * ch + ohw * ohw * h * k2 + ohw * ohw * out * h);
                c.params += (double)(h * ch + 2 * h + h * k2 + 2 * h + out * h + 2 * out);
            }
            hw = ohw;
            ch = out;
        }
    }
    int64_t last = div8(1280 * (w > 1 ? w : 1));
    c.flops += (double)(hw * hw * last * ch) + (double)(last * classes);
    c.params += (double)(last * ch + 2 * last + last * classes + classes);
    return c;
}

static void check_structure(const dnal_ctx *ctx, int64_t size, double width)
{
    dnal_model_cfg cfg = {.name = "proxyless-supernet", .batch = 2, .in_channels = 3,
                          .image_size = size, .classes = 10, .width = width};
    dnal_net *net = dnal_model_build(ctx, &cfg);
    dnal_cost dense = dnal_net_cost(net, NULL), want = formula(size, 3, width, 10);
    tap_diag("proxyless-supernet %lldx%lld width %g: %.2fM FLOPs, %.4fM params, %d layers, %zu gated channels",
             (long long)size, (long long)size, width, dense.flops / 1e6, dense.params / 1e6,
             net->n_layers, net->n_gates);
    tap_ok(dense.flops == want.flops && dense.params == want.params,
           "%lldx%lld width %g: dense cost %.3fM FLOPs %.4fM params = the plan's %.3fM %.4fM",
           (long long)size, (long long)size, width, dense.flops / 1e6, dense.params / 1e6,
           want.flops / 1e6, want.params / 1e6);
    int gates = 0, bad = 0, shortcuts = 0, sums = 0, branch = 0;
    for (int i = 0; i < net->n_layers; i++)
        gates += net->layers[i]->kind == DNAL_GATE;
    for (int e = 1; e <= EDGES; e++) {
        dnal_layer *ex = find(net, "edges.%d.%s.conv_expand", e, 0);
        dnal_layer *pj = find(net, "edges.%d.%s.conv_project", e, 0);
        int shortcut = ex && pj && ex->in[0]->c == pj->out->c && ex->in[0]->h == pj->out->h;
        char name[48];
        snprintf(name, sizeof name, "edges.%d.add", e);
        dnal_layer *add = dnal_net_find(net, name);
        bad += !ex || !pj || (add != NULL) != shortcut;
        shortcuts += shortcut;
        for (int k = 0; k < CANDS; k++) {
            dnal_layer *gd = find(net, "edges.%d.%s.gate_dw", e, k);
            dnal_layer *gp = find(net, "edges.%d.%s.gate_project", e, k);
            dnal_layer *dw = find(net, "edges.%d.%s.conv_dw", e, k);
            branch++;
            bad += !gd || !gp || !dw || dw->kernel != kern[k] || gd->branch != branch ||
                   gp->branch != branch || gd->branch_set != (shortcut ? 0 : e) ||
                   gp->branch_set != (shortcut ? 0 : e) || gd->n_gates != (size_t)dw->out->c ||
                   find(net, "edges.%d.%s.conv_expand", e, k)->out->c != ex->in[0]->c * expand[k];
            if (k > 0) {
                snprintf(name, sizeof name, "edges.%d.sum%d", e, k + 1);
                dnal_layer *s = dnal_net_find(net, name);
                sums += s && s->kind == DNAL_ADD && s->in[1] == gp->out;
            }
        }
    }
    tap_ok(bad == 0, "%lldx%lld width %g: 21 edges of 6 candidates k3/5/7 x e3/6, each gated after its depthwise and projection BN, one removable branch",
           (long long)size, (long long)size, width);
    tap_ok(sums == EDGES * (CANDS - 1) && gates == 2 + 2 * EDGES * CANDS + 1,
           "%lldx%lld width %g: each edge sums its 6 candidates (%d sums), %d gates, %d identity shortcuts",
           (long long)size, (long long)size, width, sums, gates, shortcuts);
    int prims = 0, ref = 0;
    for (int i = 0; i < net->n_layers; i++) {
        const char *impl[4];
        int k = dnal_layer_impls(net->layers[i], impl, 4);
        for (int j = 0; j < k; j++, prims++)
            ref += strstr(impl[j], "ref") != NULL;
    }
    tap_ok(ref == 0 && prims > 0, "%lldx%lld width %g: %d primitives, %d reference kernels",
           (long long)size, (long long)size, width, prims, ref);
    dnal_net_destroy(net);
}

/* all gates of candidate `k` of edge `e`: dw and/or project set to alpha a */
static void set_alpha(dnal_net *net, int e, int k, int dw, int project, float a)
{
    if (dw) {
        dnal_layer *g = find(net, "edges.%d.%s.gate_dw", e, k);
        for (size_t c = 0; c < g->n_gates; c++)
            net->alpha[g->gate_off + c] = a;
    }
    if (project) {
        dnal_layer *g = find(net, "edges.%d.%s.gate_project", e, k);
        for (size_t c = 0; c < g->n_gates; c++)
            net->alpha[g->gate_off + c] = a;
    }
}

static int present(const dnal_net *compact, int e, int k)
{
    return find(compact, "edges.%d.%s.conv_expand", e, k) && find(compact, "edges.%d.%s.conv_dw", e, k) &&
           find(compact, "edges.%d.%s.conv_project", e, k) && find(compact, "edges.%d.%s.bn_project", e, k);
}

static int absent(const dnal_net *compact, int e, int k)
{
    return !find(compact, "edges.%d.%s.conv_expand", e, k) && !find(compact, "edges.%d.%s.bn_expand", e, k) &&
           !find(compact, "edges.%d.%s.conv_dw", e, k) && !find(compact, "edges.%d.%s.bn_dw", e, k) &&
           !find(compact, "edges.%d.%s.conv_project", e, k) && !find(compact, "edges.%d.%s.bn_project", e, k);
}

static void check_removal(const dnal_ctx *ctx, int64_t multiple)
{
    enum { B = 4 };
    dnal_model_cfg cfg = {.name = "proxyless-supernet", .batch = B, .in_channels = 3,
                          .image_size = 32, .classes = 10, .width = 0.5};
    dnal_net *dense = dnal_model_build(ctx, &cfg);
    dnal_model_init(dense, 11);
    for (int i = 0; i < dense->n_layers; i++) { /* BN away from identity */
        dnal_layer *l = dense->layers[i];
        if (l->kind != DNAL_BN)
            continue;
        size_t c = l->n_stats / 2;
        for (size_t k = 0; k < c; k++) {
            dnal_net_param(dense, l, 0)[k] = (float)(0.5 + unif());
            dnal_net_param(dense, l, 1)[k] = (float)(unif() - 0.5);
            dense->stats[l->stats_off + k] = (float)(0.2 * (unif() - 0.5));
            dense->stats[l->stats_off + c + k] = (float)(0.5 + unif());
        }
    }
    /* every gate open, some channels closed at random */
    for (size_t c = 0; c < dense->n_gates; c++)
        dense->alpha[c] = unif() < 0.3 ? -1.0f : 1.0f;
    dnal_layer *ex2 = find(dense, "edges.%d.%s.conv_expand", 2, 0);
    dnal_layer *pj2 = find(dense, "edges.%d.%s.conv_project", 2, 0);
    int e2_shortcut = ex2->in[0]->c == pj2->out->c && ex2->in[0]->h == pj2->out->h;
    /* edge 1 (no shortcut): two whole candidates close */
    set_alpha(dense, 1, 0, 1, 1, -1.0f);
    set_alpha(dense, 1, 5, 1, 1, -1.0f);
    /* edge 2 (identity shortcut): every candidate closes */
    for (int k = 0; k < CANDS; k++)
        set_alpha(dense, 2, k, 1, 1, -1.0f);
    /* edge 3: only the projection gates of k5e3 close (its output is zero) */
    set_alpha(dense, 3, 2, 0, 1, -1.0f);
    /* edge 4: only the depthwise gates of k5e6 close (not removable exactly) */
    set_alpha(dense, 4, 3, 1, 0, -1.0f);
    /* edge 5 (first of a stride-2 stage, no shortcut): every candidate
     * closes; k7e3's projection has the largest alpha and stays */
    for (int k = 0; k < CANDS; k++)
        set_alpha(dense, 5, k, 1, 1, -1.0f);
    set_alpha(dense, 5, 4, 0, 1, -0.5f);
    dnal_prune(dense, 1e4, 0.9, multiple, NULL);
    int total = 0, removed = dnal_removed_branches(dense, &total, NULL);
    int want = 2 + 6 + 1 + 5;
    tap_ok(e2_shortcut && removed == want && total == EDGES * CANDS,
           "multiple %lld: prune removes %d of %d candidates (want %d)", (long long)multiple, removed,
           total, want);
    dnal_layer *g4 = find(dense, "edges.%d.%s.gate_dw", 4, 3);
    dnal_layer *g5 = find(dense, "edges.%d.%s.gate_dw", 5, 4);
    tap_ok(dnal_kept_channels(dense, g4) == (multiple > 1 ? multiple : 1) &&
               dnal_kept_channels(dense, g5) == (multiple > 1 ? multiple : 1),
           "multiple %lld: a kept candidate whose depthwise gates all closed keeps its best channel(s)",
           (long long)multiple);

    float *x = dnal_tensor_data(dense->input);
    for (size_t i = 0; i < dnal_tensor_count(dense->input); i++)
        x[i] = (float)(2 * unif() - 1);
    int32_t labels[B] = {0, 1, 2, 3};
    dnal_net_set_labels(dense, labels);
    dnal_pass pruned = {.training = 0, .gate_mode = DNAL_GATE_PRUNED, .beta = 1};
    size_t n, m;
    float *zd = logits(dense, &pruned, &n);
    dnal_cost masked = dnal_net_cost(dense, dense->mask), full = dnal_net_cost(dense, NULL);

    dnal_net *compact = dnal_net_compact(dense, B);
    int gone = absent(compact, 1, 0) && absent(compact, 1, 5) && absent(compact, 3, 2) &&
               present(compact, 1, 1) && present(compact, 3, 3) && present(compact, 4, 3) &&
               present(compact, 5, 4);
    for (int k = 0; k < CANDS; k++) {
        gone = gone && absent(compact, 2, k);
        gone = gone && (k == 4 ? present(compact, 5, k) : absent(compact, 5, k));
    }
    gone = gone && !dnal_net_find(compact, "edges.2.add") && !dnal_net_find(compact, "edges.2.sum6") &&
           !dnal_net_find(compact, "edges.1.sum2") && !dnal_net_find(compact, "edges.5.sum6");
    tap_ok(gone, "multiple %lld: removed candidates and their sums are absent from the compact network, kept ones present",
           (long long)multiple);
    memcpy(dnal_tensor_data(compact->input), x, sizeof *x * dnal_tensor_count(dense->input));
    dnal_net_set_labels(compact, labels);
    float *zc = logits(compact, &pruned, &m);
    double scale, rel = m == n ? max_rel_diff(zd, zc, n, &scale) : INFINITY;
    tap_ok(rel <= 1e-4, "multiple %lld: compact logits equal the masked supernet's (max rel diff %.2e, |logits| up to %.2f)",
           (long long)multiple, rel, scale);
    dnal_cost real = dnal_net_cost(compact, NULL);
    tap_ok(real.flops == masked.flops && real.params == masked.params && real.flops < full.flops,
           "multiple %lld: compact cost %.3fM FLOPs %.4fM params = masked cost %.3fM %.4fM (dense %.3fM %.4fM)",
           (long long)multiple, real.flops / 1e6, real.params / 1e6, masked.flops / 1e6,
           masked.params / 1e6, full.flops / 1e6, full.params / 1e6);

    /* export and reload */
    char path[64];
    snprintf(path, sizeof path, "/tmp/dnal_supernet_%d.h5", (int)getpid());
    dnal_arch_record rec = {0};
    dnal_arch_record_of(&rec, dense);
    dnal_model_save(path, &cfg, &rec, compact, full, real);
    dnal_model_info info;
    dnal_net *loaded = dnal_model_load(ctx, path, B, &info);
    memcpy(dnal_tensor_data(loaded->input), x, sizeof *x * dnal_tensor_count(dense->input));
    dnal_net_set_labels(loaded, labels);
    size_t k;
    float *zl = logits(loaded, &pruned, &k);
    double rel2 = k == n ? max_rel_diff(zd, zl, n, &scale) : INFINITY;
    tap_ok(rel2 <= 1e-4 && loaded->n_layers == compact->n_layers && info.compact.flops == real.flops,
           "multiple %lld: the exported model reloads to the masked supernet's logits (max rel diff %.2e)",
           (long long)multiple, rel2);
    unlink(path);
    dnal_arch_record_free(&rec);

    /* the compact network trains: a finite loss and gradient */
    dnal_pass train = {.training = 1, .gate_mode = DNAL_GATE_OFF, .beta = 1};
    dnal_net_forward(compact, &train);
    dnal_net_backward(compact, &train, NULL, NULL);
    int finite = 1;
    for (size_t i = 0; i < compact->n_param; i++)
        finite = finite && isfinite(compact->grad[i]);
    double gsum = 0;
    for (size_t i = 0; i < compact->n_param; i++)
        gsum += fabs(compact->grad[i]);
    tap_ok(finite && gsum > 0, "multiple %lld: forward and backward of the compact network (|grad| sum %.3g)",
           (long long)multiple, gsum);
    free(zd);
    free(zc);
    free(zl);
    dnal_net_destroy(loaded);
    dnal_net_destroy(compact);
    dnal_net_destroy(dense);
}

int main(void)
{
    dnal_ctx *ctx = dnal_ctx_create();
    check_structure(ctx, 32, 1.0);
    check_structure(ctx, 28, 0.25);
    check_structure(ctx, 64, 0.5);
    check_removal(ctx, 1);
    check_removal(ctx, 8);
    dnal_ctx_destroy(ctx);
    return tap_done();
}
