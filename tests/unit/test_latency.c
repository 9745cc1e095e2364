/* The latency table (docs/design.md, "Latency"): interpolation of a curve;
 * the prediction of a network's time against a hand computation on a table
 * of known times (separable convs, layers at their live channel counts, a
 * vanished branch, the rest scaled); a real profile of a small model (its
 * curves in steps of the layout's channel block, inputs varied only where a
 * gate reaches them, the dense prediction equal to the measured step); the
 * file's layout (attributes, /layers, /gates) and its round trip; the
 * channel block of prune.channel_multiple=auto. Natively and under
 * ONEDNN_MAX_CPU_ISA=AVX2 (Makefile.am runs both): no CPU's block is assumed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "dnal/io.h"
#include "dnal/models.h"
#include "dnal/search.h"
#include "tap.h"

static int near(double a, double b, double rel)
{
    return fabs(a - b) <= rel * fmax(fabs(a), fabs(b)) + 1e-12;
}

static void check_interpolation(void)
{
    dnal_latency_curve c;
    dnal_latency_curve_alloc(&c, 4);
    const int64_t ch[4] = {16, 32, 48, 50};
    const double train[4] = {1, 2, 4, 5}, infer[4] = {0.1, 0.2, 0.4, 0.5};
    for (int k = 0; k < 4; k++) {
        c.channels[k] = ch[k];
        c.ms[DNAL_LATENCY_TRAIN][k] = train[k];
        c.ms[DNAL_LATENCY_INFER][k] = infer[k];
    }
    int ok = 1;
    for (int k = 0; k < 4; k++)
        ok &= dnal_latency_at(&c, (double)ch[k], 0) == train[k] &&
              dnal_latency_at(&c, (double)ch[k], 1) == infer[k];
    tap_ok(ok, "interpolation: the measured times at the measured counts");
    tap_ok(near(dnal_latency_at(&c, 24, 0), 1.5, 1e-12) && near(dnal_latency_at(&c, 40, 0), 3, 1e-12) &&
               near(dnal_latency_at(&c, 49, 1), 0.45, 1e-12) &&
               near(dnal_latency_at(&c, 20.5, 0), 1 + 4.5 / 16, 1e-12),
           "interpolation: linear between counts (24 -> 1.5, 40 -> 3, 49 -> 0.45 infer, 20.5)");
    tap_ok(dnal_latency_at(&c, 5, 0) == 1 && dnal_latency_at(&c, 0.3, 1) == 0.1 &&
               dnal_latency_at(&c, 64, 0) == 5,
           "interpolation: below one block the first point (a block is computed whole), above "
           "dense the last");
    dnal_free(c.channels);
    dnal_free(c.ms[0]);
    dnal_free(c.ms[1]);
}

/* input 2x3x8x8; conv1 16 -> bn1 -> gate1 -> relu; conv2 24 -> bn2 ->
 * gate2; a branch conv3 24 -> bn3 -> gate3 added to it, ReLU, gap, fc 5,
 * loss */
static void tiny_layers(dnal_net *net, void *arg)
{
    (void)arg;
    dnal_conv_cfg c1 = {.out_c = 16, .kernel = 3, .stride = 1, .pad = 1, .groups = 1};
    dnal_conv_cfg c2 = {.out_c = 24, .kernel = 3, .stride = 1, .pad = 1, .groups = 1};
    dnal_tensor *t = dnal_net_conv(net, "conv1", net->input, &c1);
    t = dnal_net_relu(net, "relu1", dnal_net_gate(net, "gate1", dnal_net_bn(net, "bn1", t)), 0);
    dnal_tensor *a = dnal_net_conv(net, "conv2", t, &c2);
    a = dnal_net_gate(net, "gate2", dnal_net_bn(net, "bn2", a));
    dnal_tensor *b = dnal_net_conv(net, "conv3", a, &c2);
    b = dnal_net_gate(net, "gate3", dnal_net_bn(net, "bn3", b));
    t = dnal_net_relu(net, "relu", dnal_net_sum(net, "add", a, b), 0);
    t = dnal_net_linear(net, "fc", dnal_net_gap(net, "gap", t), 5, 1);
    dnal_net_softmax_ce(net, "loss", t);
}

/* a made-up time of each layer: kind k, c channels -> (k + 1) * c (infer: a tenth) */
static double made_up(int kind, double c, int which)
{
    return (kind + 1) * c * (which ? 0.1 : 1.0);
}

static void made_up_curve(dnal_latency_curve *c, int kind, int64_t dense, int64_t step,
                          double scale)
{
    int n = (int)((dense + step - 1) / step);
    dnal_latency_curve_alloc(c, n);
    for (int k = 0; k < n; k++) {
        c->channels[k] = k == n - 1 ? dense : (k + 1) * step;
        for (int w = 0; w < 2; w++)
            c->ms[w][k] = made_up(kind, (double)c->channels[k], w) * scale;
    }
}

static double live(const dnal_net *net, const dnal_tensor *t)
{
    const float *l = dnal_net_liveness(net, t);
    double n = 0;
    for (int64_t c = 0; c < t->c; c++)
        n += l[c];
    return n;
}

static void check_prediction(const dnal_ctx *ctx)
{
    int64_t input[4] = {2, 3, 8, 8};
    dnal_net *net = dnal_net_build(ctx, input, tiny_layers, NULL);
    int n = 0;
    for (int i = 0; i < net->n_layers; i++)
        n += dnal_net_profiled_layer(net, i);
    dnal_latency *tab = dnal_latency_new(n);
    /* dense convs: out(c) = (k+1) c, in(c) = (k+1) c OUT/IN (equal at
     * dense); others (k+1) c; points every 8 channels (linear curves: the
     * interpolation is exact) */
    double layers = 0;
    for (int i = 0, e = 0; i < net->n_layers; i++) {
        if (!dnal_net_profiled_layer(net, i))
            continue;
        const dnal_layer *l = net->layers[i];
        dnal_latency_layer *entry = &tab->layers[e++];
        snprintf(entry->name, sizeof entry->name, "%s", l->name);
        entry->kind = (int)l->kind;
        entry->in_channels = l->in[0]->c;
        entry->out_channels = l->out ? l->out->c : l->in[0]->c;
        int64_t along = l->kind == DNAL_LINEAR ? entry->in_channels : entry->out_channels;
        made_up_curve(&entry->out, entry->kind, along, 8, 1.0);
        if (l->kind == DNAL_CONV && l->in[0] != net->input)
            made_up_curve(&entry->in, entry->kind, entry->in_channels, 8,
                          (double)entry->out_channels / (double)entry->in_channels);
        if (l->kind == DNAL_ADD) { /* its scatter form three times the add, widening five */
            made_up_curve(&entry->scatter, entry->kind, entry->out_channels, 8, 3.0);
            made_up_curve(&entry->widen, entry->kind, entry->out_channels, 8, 5.0);
        }
        layers += entry->out.ms[0][entry->out.n - 1];
    }
    tab->layers_ms[0] = layers;
    tab->step_ms[0] = 1.25 * layers; /* a rest of a fifth of the step */
    tab->layers_ms[1] = tab->step_ms[1] = layers * 0.1;
    dnal_latency_bind(tab, net, "made-up table");
    tap_ok(near(dnal_latency_predict(tab, net, NULL, 0), tab->step_ms[0], 1e-12) &&
               near(dnal_latency_predict(tab, net, NULL, 1), tab->step_ms[1], 1e-12),
           "prediction: the dense network's time is its measured step (train and infer)");

    /* gate1 keeps 8 of 16, gate2 18.5 of 24 (expected); gate3 8, so that the
     * add's inputs keep different channels (its scatter form), then none:
     * conv3's branch vanishes (conv3, bn3) and so does the add (the sum is
     * its other input) */
    float *g = dnal_alloc(sizeof(float) * net->n_gates);
    for (int scenario = 0; scenario < 3; scenario++) {
        for (int i = 0; i < net->n_layers; i++) {
            const dnal_layer *l = net->layers[i];
            if (l->kind != DNAL_GATE)
                continue;
            double keep = !strcmp(l->name, "gate1") ? 8 : !strcmp(l->name, "gate2") ? 18.5
                                                          : scenario == 0 ? 8 : 0;
            for (size_t c = 0; c < l->n_gates; c++)
                g[l->gate_off + c] = (float)fmin(1.0, fmax(0.0, keep - (double)c));
            /* masks: gate2 keeps channels 0-7, gate3 8-15: neither input holds
             * the sum's 16, one is widened first */
            for (size_t c = 0; scenario == 2 && c < l->n_gates; c++)
                g[l->gate_off + c] = !strcmp(l->name, "gate1") ? c < 8
                                     : !strcmp(l->name, "gate2") ? c < 8
                                                                 : c >= 8 && c < 16;
        }
        double got = dnal_latency_predict(tab, net, g, 0), want = 0;
        for (int i = 0; i < net->n_layers; i++) {
            const dnal_layer *l = net->layers[i];
            if (!dnal_net_profiled_layer(net, i))
                continue;
            double cin = live(net, l->in[0]), cout = l->out ? live(net, l->out) : cin;
            if (cin == 0 || cout == 0 || (l->kind == DNAL_ADD && live(net, l->in[1]) == 0))
                continue;
            if (l->kind == DNAL_CONV && l->in[0] != net->input) /* out(cout) in(cin) / t(dense) */
                want += made_up(l->kind, cout, 0) *
                        (made_up(l->kind, cin, 0) * (double)l->out->c / (double)l->in[0]->c) /
                        made_up(l->kind, (double)l->out->c, 0);
            else if (l->kind == DNAL_ADD) /* inputs of 18.5 and 8 channels scattered, or widened */
                want += (scenario == 2 ? 5 : 3) * made_up(l->kind, cout, 0);
            else
                want += made_up(l->kind, l->kind == DNAL_LINEAR ? cin : cout, 0);
        }
        static const char *const what[3] = {
            "prediction: each layer at its live counts, convs separable, an add of inputs keeping "
            "different channels in its scatter form, the rest scaled (%.4f, by hand %.4f)",
            "prediction: a closed branch vanishes with the add it fed (%.4f, by hand %.4f)",
            "prediction: masks where neither input of the add holds all its channels: the "
            "widening form (%.4f, by hand %.4f)"};
        tap_ok(near(got, 1.25 * want, 1e-9), what[scenario], got, 1.25 * want);
    }
    dnal_free(g);
    dnal_latency_free(tab);
    dnal_net_destroy(net);
}

static int curve_in_blocks(const dnal_latency_curve *c, int64_t dense, int64_t block)
{
    if (c->n != (int)((dense + block - 1) / block))
        return 0;
    for (int k = 0; k < c->n; k++) {
        int64_t want = k == c->n - 1 ? dense : (k + 1) * block;
        if (c->channels[k] != want || !(c->ms[0][k] > 0) || !(c->ms[1][k] > 0) ||
            !isfinite(c->ms[0][k]) || !isfinite(c->ms[1][k]))
            return 0;
    }
    return 1;
}

static void read_i64s(hid_t f, const char *name, int64_t *v, int max, int *n)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t s = H5Dget_space(d);
    *n = (int)H5Sget_simple_extent_npoints(s);
    if (*n <= max)
        H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Sclose(s);
    H5Dclose(d);
}

static void check_profile(const dnal_ctx *ctx)
{
    /* resnet20 at width 0.75 on 8x8 inputs: widths 12, 24, 48, the padded
     * shortcut, residual streams whose channels the gates reach */
    dnal_model_cfg m = {.name = "resnet20", .batch = 4, .in_channels = 3, .image_size = 8,
                        .classes = 10, .width = 0.75};
    dnal_latency *tab = dnal_profile(ctx, &m, 1, 1, NULL, NULL);
    dnal_net *net = dnal_model_build(ctx, &m);
    dnal_latency_bind(tab, net, "profile");
    int64_t block = dnal_net_channel_block(net);
    tap_ok(tab->block == block && tab->batch == 4 && !strcmp(tab->model, "resnet20"),
           "profile: block %lld (the network's, in channels last the convolutions' layout's), "
           "batch and model recorded", (long long)block);
    /* which counts a gate can lower: fewer live channels with every gate closed */
    float *closed = dnal_calloc(sizeof(float) * net->n_gates);
    dnal_net_cost(net, closed);
    char *varies = dnal_calloc((size_t)net->n_tensors);
    for (int t = 0; t < net->n_tensors; t++)
        for (int64_t c = 0; c < net->tensors[t]->c; c++)
            varies[t] |= dnal_net_liveness(net, net->tensors[t])[c] < 1.0f;
    int shape_ok = 1, in_ok = 1, n_conv = 0, n_in = 0;
    for (int i = 0; i < net->n_layers; i++) {
        if (tab->of_layer[i] < 0)
            continue;
        const dnal_layer *l = net->layers[i];
        const dnal_latency_layer *e = &tab->layers[tab->of_layer[i]];
        const dnal_tensor *counted = l->kind == DNAL_LINEAR || !l->out ? l->in[0] : l->out;
        int64_t along = l->kind == DNAL_LINEAR ? e->in_channels : e->out_channels;
        if (varies[counted->id])
            shape_ok &= curve_in_blocks(&e->out, along, block);
        else
            shape_ok &= e->out.n == 1 && e->out.channels[0] == along && e->out.ms[0][0] > 0;
        if (l->kind == DNAL_CONV) {
            n_conv++;
            n_in += e->in.n > 0;
            in_ok &= varies[l->in[0]->id] ? curve_in_blocks(&e->in, e->in_channels, block)
                                          : e->in.n == 0;
        }
    }
    tap_ok(shape_ok, "profile: each layer's curve from one block to dense in steps of the "
           "block where a gate can lower its count, at dense alone where none can");
    tap_ok(in_ok && n_conv == 19 && n_in == 14 && !varies[net->input->id] &&
               !varies[dnal_net_find(net, "layer1.0.conv1")->in[0]->id] &&
               varies[dnal_net_find(net, "layer2.1.conv1")->in[0]->id],
           "profile: an input curve for the convs whose input a gate reaches (%d of %d: not "
           "the stem, nor the first stage's ungated stream)", n_in, n_conv);
    dnal_free(closed);
    dnal_free(varies);
    tap_ok(near(dnal_latency_predict(tab, net, NULL, 0), tab->step_ms[0], 1e-3) &&
               tab->step_ms[0] > 0 && tab->step_ms[1] > 0,
           "profile: the dense prediction is the measured step (%.3f ms, %.3f ms)",
           dnal_latency_predict(tab, net, NULL, 0), tab->step_ms[0]);

    /* the file */
    char path[] = "/tmp/dnal-test-latency-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    dnal_latency_save(path, tab, net, &m);
    dnal_latency *back = dnal_latency_load(path, net, &m);
    int same = back->n_layers == tab->n_layers && back->block == tab->block &&
               back->step_ms[0] == tab->step_ms[0] && back->step_ms[1] == tab->step_ms[1] &&
               back->layers_ms[0] == tab->layers_ms[0] && !strcmp(back->isa, tab->isa) &&
               !strcmp(back->layout, tab->layout);
    for (int e = 0; same && e < tab->n_layers; e++) {
        const dnal_latency_layer *a = &tab->layers[e], *b = &back->layers[e];
        same &= !strcmp(a->name, b->name) && a->kind == b->kind && a->out.n == b->out.n &&
                a->in.n == b->in.n;
        for (int k = 0; same && k < a->out.n; k++)
            same &= a->out.channels[k] == b->out.channels[k] &&
                    a->out.ms[0][k] == b->out.ms[0][k] && a->out.ms[1][k] == b->out.ms[1][k];
        for (int k = 0; same && k < a->in.n; k++)
            same &= a->in.channels[k] == b->in.channels[k] && a->in.ms[0][k] == b->in.ms[0][k];
    }
    tap_ok(same, "file: the table reads back as written");

    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    const char *attrs[] = {"format", "version", "model", "image_size", "width", "batch",
                           "threads", "block", "isa", "layout", "train_step_ms",
                           "infer_step_ms", "train_layers_ms", "infer_layers_ms"};
    int attrs_ok = f >= 0;
    for (size_t a = 0; attrs_ok && a < sizeof attrs / sizeof *attrs; a++)
        attrs_ok &= H5Aexists(f, attrs[a]) > 0;
    int64_t ch[64];
    int n = 0;
    read_i64s(f, "/layers/layer3.0.conv2/in/channels", ch, 64, &n);
    int layers_ok = n == (int)((48 + block - 1) / block) && ch[n - 1] == 48 &&
                    H5Lexists(f, "/layers/layer3.0.conv2/train_ms", H5P_DEFAULT) > 0;
    /* the gates' curves: the network's time against each gate's channels */
    float *scratch = dnal_alloc(sizeof(float) * net->n_gates);
    double *ms = dnal_alloc(sizeof(double) * 64);
    read_i64s(f, "/gates/layer2.1.gate1/channels", ch, 64, &n);
    hid_t d = H5Dopen2(f, "/gates/layer2.1.gate1/train_ms", H5P_DEFAULT);
    H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, ms);
    H5Dclose(d);
    dnal_layer *gate = dnal_net_find(net, "layer2.1.gate1");
    int gi = 0;
    while (net->layers[gi] != gate)
        gi++;
    for (size_t c = 0; c < net->n_gates; c++)
        scratch[c] = 1.0f;
    double all_open = dnal_latency_predict(tab, net, scratch, 0);
    int gates_ok = n == (int)((24 + block - 1) / block) && ch[n - 1] == 24 &&
                   near(ms[n - 1], all_open, 1e-9) &&
                   near(ms[0], dnal_latency_gate_time(tab, net, gi, (double)ch[0], 0, scratch),
                        1e-9);
    H5Fclose(f);
    tap_ok(attrs_ok && layers_ok && gates_ok,
           "file: the documented attributes, /layers/<layer>[/in]/{channels,train_ms,infer_ms}, "
           "/gates/<gate> curves of the network's time");
    dnal_free(ms);
    unlink(path);

    /* a time budget fitted at prune (dnal_budget_latency): alpha at random,
     * auto multiples; the compact network's predicted time is at most the
     * target, or where even one block per layer is above it, that network */
    unsigned seed = 9;
    for (size_t c = 0; c < net->n_gates; c++)
        net->alpha[c] = (float)(rand_r(&seed) % 2001) / 1000.0f - 1.0f;
    dnal_latency_use use = {tab, DNAL_LATENCY_TRAIN};
    dnal_budget budget = {dnal_budget_latency(&use), 0.7};
    dnal_prune(net, 1e4, 0.9, 0, &budget);
    double fraction = dnal_budget_fraction(&budget, net, net->mask);
    int blocks = 1, minimal = 1;
    for (int i = 0; i < net->n_layers; i++) {
        const dnal_layer *l = net->layers[i];
        if (l->kind != DNAL_GATE)
            continue;
        int64_t kept = dnal_kept_channels(net, l), one = block < (int64_t)l->n_gates ? block : (int64_t)l->n_gates;
        blocks &= kept % block == 0 || kept == (int64_t)l->n_gates;
        minimal &= kept == one;
    }
    tap_ok(blocks && (fraction <= 0.7 || minimal) && fraction > 0,
           "fit: a latency target of 0.7 at prune gives %.4f of the dense time%s, every layer "
           "whole blocks", fraction, minimal ? " (one block per layer: the least there is)" : "");
    dnal_free(scratch);
    dnal_latency_free(back);
    dnal_latency_free(tab);
    dnal_net_destroy(net);
}

static float *logits(dnal_net *net, const dnal_pass *p, size_t *n)
{
    dnal_net_forward(net, p);
    dnal_tensor *z = net->loss->in[0];
    *n = dnal_tensor_count(z);
    float *out = dnal_alloc(sizeof *out * *n);
    dnal_tensor_read(net->ctx, z, 0, out);
    return out;
}

/* prune.channel_multiple=auto on a zoo model: the threshold keeps 5 of
 * each gate's channels (alpha falling across the layer), auto rounds them
 * to the block; the compact network keeps the blocked layout, and its
 * logits equal the masked network's */
static void check_auto_multiple(const dnal_ctx *ctx, const char *name)
{
    dnal_model_cfg m = {.name = name, .batch = 2, .in_channels = 3, .image_size = 8,
                        .classes = 10, .width = 1};
    dnal_net *net = dnal_model_build(ctx, &m);
    dnal_model_init(net, 5);
    int64_t block = dnal_net_channel_block(net);
    unsigned seed = 3;
    for (int i = 0; i < net->n_layers; i++) {
        dnal_layer *l = net->layers[i];
        if (l->kind == DNAL_BN) /* away from identity, so a wrong channel shows */
            for (size_t c = 0; c < l->n_stats / 2; c++) {
                dnal_net_param(net, l, 0)[c] = 0.5f + (float)(rand_r(&seed) % 1000) / 1000.0f;
                dnal_net_param(net, l, 1)[c] = (float)(rand_r(&seed) % 1000) / 1000.0f - 0.5f;
            }
        for (size_t c = 0; l->kind == DNAL_GATE && c < l->n_gates; c++)
            net->alpha[l->gate_off + c] = c < 5 ? 1.0f : -1.0f - (float)c;
    }
    dnal_prune(net, 100, 0.9, 0, NULL);
    int ok = 1;
    for (int i = 0; i < net->n_layers; i++) {
        const dnal_layer *l = net->layers[i];
        if (l->kind == DNAL_GATE)
            ok &= dnal_kept_channels(net, l) == (block < (int64_t)l->n_gates ? block : (int64_t)l->n_gates);
    }
    tap_ok(ok && block == dnal_layout_channel_block(&ctx->conv_layout) && (block == 16 || block == 8),
           "auto, %s: 5 kept -> one block (%lld, the block of the layout oneDNN picks here) "
           "per gated layer", name, (long long)block);
    float *x = dnal_tensor_data(net->input);
    for (size_t i = 0; i < dnal_tensor_count(net->input); i++)
        x[i] = (float)(rand_r(&seed) % 2001) / 1000.0f - 1.0f;
    int32_t labels[2] = {0, 1};
    dnal_net_set_labels(net, labels);
    dnal_pass pruned = {.training = 0, .gate_mode = DNAL_GATE_PRUNED, .beta = 1};
    size_t n, k;
    float *zd = logits(net, &pruned, &n);
    dnal_net *small = dnal_net_compact(net, 2);
    memcpy(dnal_tensor_data(small->input), x, sizeof *x * dnal_tensor_count(net->input));
    dnal_net_set_labels(small, labels);
    float *zc = logits(small, &pruned, &k);
    double diff = 0, scale = 0;
    for (size_t i = 0; i < n && k == n; i++) {
        diff = fmax(diff, fabs(zd[i] - zc[i]));
        scale = fmax(scale, fabs(zd[i]));
    }
    tap_ok(k == n && diff <= 1e-4 * fmax(scale, 1.0) && dnal_md_equal(&small->layout, &net->layout) &&
               small->n_reorders == 0 && small->n_reference == 0,
           "auto, %s: the compact network's logits equal the masked network's (max diff %.2e), "
           "in the blocked layout without reorders", name, diff);
    dnal_free(zd);
    dnal_free(zc);
    dnal_net_destroy(small);
    dnal_net_destroy(net);
}

int main(void)
{
    dnal_ctx *ctx = dnal_ctx_create();
    dnal_set_threads(1);
    tap_diag("isa %s", dnal_isa_name());
    check_interpolation();
    check_prediction(ctx);
    check_profile(ctx);
    check_auto_multiple(ctx, "resnet20");
    check_auto_multiple(ctx, "mobilenetv2");
    dnal_ctx_destroy(ctx);
    printf("1..%d\n", tap_count);
    return tap_failed ? 1 : 0;
}
