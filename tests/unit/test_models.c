/* The model zoo: parameter and multiply-add counts against the published
 * figures, expected FLOPs under gate values, gate placement, and building at
 * the shapes the datasets give (28x28x1, 32x32x3, 224x224x3). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dnal/models.h"
#include "tap.h"

static dnal_net *build_width(const dnal_ctx *ctx, const char *name, int64_t ch, int64_t size,
                             int64_t classes, double width)
{
    dnal_model_cfg cfg = {.name = name, .batch = 2, .in_channels = ch, .image_size = size,
                          .classes = classes, .width = width};
    return dnal_model_build(ctx, &cfg);
}

static dnal_net *build(const dnal_ctx *ctx, const char *name, int64_t ch, int64_t size,
                       int64_t classes)
{
    return build_width(ctx, name, ch, size, classes, 1.0);
}

static int near(double got, double want, double rel)
{
    return fabs(got - want) <= rel * want;
}

static int count_kind(const dnal_net *net, dnal_layer_kind k)
{
    int n = 0;
    for (int i = 0; i < net->n_layers; i++)
        n += net->layers[i]->kind == k;
    return n;
}

/* published: params and multiply-adds (torchvision; He et al.; Li et al.) */
static void check_counts(const dnal_ctx *ctx, const char *name, int64_t size, int64_t classes,
                         double params, double flops, double rel)
{
    dnal_net *net = build(ctx, name, 3, size, classes);
    dnal_cost c = dnal_net_cost(net, NULL);
    tap_ok(near(c.params, params, rel), "%s: %.4fM parameters (published %.4gM)", name,
           c.params / 1e6, params / 1e6);
    tap_ok(near(c.flops, flops, rel), "%s: %.2fM multiply-adds (published %.4gM)", name,
           c.flops / 1e6, flops / 1e6);
    dnal_net_destroy(net);
}

/* Every primitive of the network runs a JIT kernel: oneDNN's reference
 * kernels are 10-100x slower (a 1-channel stem once took 70% of a step). */
static void check_net_no_reference_kernels(const dnal_net *net, const char *what)
{
    int total = 0, ref = 0;
    const char *first = NULL, *first_layer = NULL;
    for (int i = 0; i < net->n_layers; i++) {
        const char *impl[4];
        int n = dnal_layer_impls(net->layers[i], impl, 4);
        for (int k = 0; k < n; k++, total++)
            if (strstr(impl[k], "ref")) {
                ref++;
                if (!first) {
                    first = impl[k];
                    first_layer = net->layers[i]->name;
                }
            }
    }
    tap_ok(ref == 0 && total > 0, "%s: %d primitives, %d reference kernels%s%s%s", what, total,
           ref, first ? " (first: " : "", first ? first_layer : "", first ? ")" : "");
}

static void check_no_reference_kernels(const dnal_ctx *ctx, const char *name, int64_t ch,
                                       int64_t size)
{
    char what[96];
    dnal_net *net = build(ctx, name, ch, size, 10);
    snprintf(what, sizeof what, "%s at %lldx%lldx%lld", name, (long long)ch, (long long)size,
             (long long)size);
    check_net_no_reference_kernels(net, what);
    dnal_net_destroy(net);
}

/* Every layer's forward reads the layout its producer wrote: no layer reads
 * a reordered copy of another layer's output (whatever layout this CPU's
 * kernels made the network pick). */
static void check_net_no_reorders(const dnal_net *net, const char *what)
{
    const char *first = NULL;
    char layout[32];
    for (int i = 0; i < net->n_layers && !first; i++)
        if (net->layers[i]->src_reorder && net->layers[i]->in[0] != net->input)
            first = net->layers[i]->name;
    tap_ok(net->n_reorders == 0 && !first, "%s: %d reorders between layers (layout %s)%s%s%s",
           what, net->n_reorders, dnal_md_layout_str(&net->layout, layout, sizeof layout),
           first ? " (first: " : "", first ? first : "", first ? ")" : "");
}

static void check_no_reorders(const dnal_ctx *ctx, const char *name, int64_t ch, int64_t size,
                              double width)
{
    char what[96];
    dnal_net *net = build_width(ctx, name, ch, size, 10, width);
    snprintf(what, sizeof what, "%s at %lldx%lldx%lld width %g", name, (long long)ch,
             (long long)size, (long long)size, width);
    check_net_no_reorders(net, what);
    dnal_net_destroy(net);
}

/* A pruned resnet20 whose gates keep 5, 7 or 13 channels in turn: widths
 * without a fast kernel in some layouts (dense 3x3 over 5 or 13 channels in
 * nChw16c on AVX-512) */
static void check_compact_odd_widths(const dnal_ctx *ctx)
{
    static const size_t keep[3] = {5, 7, 13};
    dnal_net *dense = build(ctx, "resnet20", 3, 32, 10);
    int gate = 0;
    for (int i = 0; i < dense->n_layers; i++) {
        dnal_layer *l = dense->layers[i];
        if (l->kind != DNAL_GATE)
            continue;
        for (size_t c = 0; c < l->n_gates; c++)
            dense->mask[l->gate_off + c] = c < keep[gate % 3] ? 1.0f : 0.0f;
        gate++;
    }
    dnal_net *net = dnal_net_compact(dense, 2);
    check_net_no_reorders(net, "resnet20 compact to 5/7/13 channels");
    check_net_no_reference_kernels(net, "resnet20 compact to 5/7/13 channels");
    dnal_net_destroy(net);
    dnal_net_destroy(dense);
}

/* no reference kernel in the zoo models, no reorder between their layers,
 * also in a compact resnet20 of odd widths */
static void check_kernels_and_layouts(const dnal_ctx *ctx)
{
    check_no_reference_kernels(ctx, "resnet20", 1, 28);
    check_no_reference_kernels(ctx, "resnet56", 3, 32);
    check_no_reference_kernels(ctx, "vgg16", 3, 32);
    check_no_reference_kernels(ctx, "mobilenetv2", 3, 32);
    check_no_reference_kernels(ctx, "mobilenetv2", 1, 28);
    check_no_reference_kernels(ctx, "resnet50", 3, 64);

    check_no_reorders(ctx, "resnet20", 1, 28, 1.0);
    check_no_reorders(ctx, "resnet56", 3, 32, 1.0);
    check_no_reorders(ctx, "vgg16", 3, 32, 1.0);
    check_no_reorders(ctx, "mobilenetv2", 3, 32, 1.0);
    check_no_reorders(ctx, "resnet50", 3, 64, 1.0);
    check_no_reorders(ctx, "proxyless-supernet", 1, 28, 0.25);
    check_compact_odd_widths(ctx);
}

int main(void)
{
    dnal_ctx *ctx = dnal_ctx_create();
    check_counts(ctx, "resnet20", 32, 10, 0.27e6, 40.8e6, 0.02);
    check_counts(ctx, "resnet56", 32, 10, 0.85e6, 125e6, 0.01);
    check_counts(ctx, "resnet110", 32, 10, 1.7e6, 253e6, 0.02);
    check_counts(ctx, "vgg16", 32, 10, 15.0e6, 313.47e6, 0.002);
    check_counts(ctx, "resnet18", 224, 1000, 11.69e6, 1.82e9, 0.01);
    check_counts(ctx, "resnet50", 224, 1000, 25.6e6, 4.1e9, 0.01);
    check_counts(ctx, "mobilenetv2-imagenet", 224, 1000, 3.5e6, 300e6, 0.01);

    /* gate placement */
    dnal_net *net = build(ctx, "resnet20", 3, 32, 10);
    tap_ok(count_kind(net, DNAL_GATE) == 18, "resnet20: 18 gates, two per residual branch (%d)",
           count_kind(net, DNAL_GATE));
    tap_ok(!dnal_net_find(net, "stem.gate") && dnal_net_find(net, "layer3.2.gate2"),
           "resnet20: no gate on the stem, one before each addition");
    dnal_net_destroy(net);
    net = build(ctx, "resnet50", 3, 224, 1000);
    tap_ok(count_kind(net, DNAL_GATE) == 48 && !dnal_net_find(net, "layer1.0.downsample.gate"),
           "resnet50: 48 gates (3 per bottleneck), none on shortcuts (%d)", count_kind(net, DNAL_GATE));
    dnal_net_destroy(net);

    /* expected FLOPs: VGG16 with every gate at 0.5 halves each conv's output
     * and input channels except the image input: first conv x0.5, others x0.25 */
    net = build(ctx, "vgg16", 3, 32, 10);
    tap_ok(count_kind(net, DNAL_GATE) == 13, "vgg16: 13 gates, one per conv");
    float *g = malloc(sizeof *g * net->n_gates);
    for (size_t i = 0; i < net->n_gates; i++)
        g[i] = 0.5f;
    dnal_cost dense = dnal_net_cost(net, NULL), half = dnal_net_cost(net, g);
    double first = 32 * 32 * 64 * 27.0, fc1 = 512.0 * 512, fc2 = 512.0 * 10;
    double want = 0.5 * first + 0.25 * (dense.flops - first - fc1 - fc2) + 0.5 * fc1 + fc2;
    tap_ok(near(half.flops, want, 1e-9), "vgg16: expected FLOPs with gates at 0.5: %.3fM (formula %.3fM)",
           half.flops / 1e6, want / 1e6);
    for (size_t i = 0; i < net->n_gates; i++)
        g[i] = 1.0f;
    dnal_cost ones = dnal_net_cost(net, g);
    tap_ok(ones.flops == dense.flops && ones.params == dense.params,
           "vgg16: gates at 1 give the dense cost");
    free(g);
    dnal_net_destroy(net);

    /* MobileNetV2: the depthwise gate governs the expansion conv's outputs */
    net = build(ctx, "mobilenetv2", 3, 32, 10);
    dnal_layer *expand = dnal_net_find(net, "features.2.conv_expand");
    dnal_layer *dwgate = dnal_net_find(net, "features.2.gate_dw");
    int gi = -1;
    for (int i = 0; i < net->n_layers; i++)
        if (net->layers[i] == dwgate)
            gi = i;
    tap_ok(expand && dwgate && expand->out->gate == gi,
           "mobilenetv2: the depthwise gate governs the expansion conv's channels");
    tap_ok(count_kind(net, DNAL_GATE) == 35, "mobilenetv2: 35 gates (2 per block + final conv) (%d)",
           count_kind(net, DNAL_GATE));
    dnal_net_destroy(net);

    check_kernels_and_layouts(ctx);
    /* the same with bf16 activations (run.dtype=bf16), where oneDNN has them */
    dnal_ctx *bf16 = dnal_ctx_create();
    if (dnal_ctx_set_dtype(bf16, dnnl_bf16))
        check_kernels_and_layouts(bf16);
    else
        tap_skip("bf16 zoo kernels and layouts: oneDNN creates no bf16 primitives on ISA %s",
                 dnal_isa_name());
    dnal_ctx_destroy(bf16);

    /* every model builds for the shapes of its datasets */
    for (int i = 0; i < dnal_model_count(); i++) {
        const dnal_model_spec *m = dnal_model_at(i);
        int imagenet = m->classes == 1000;
        int64_t ch = imagenet ? 3 : 1, size = imagenet ? 64 : 28;
        net = build(ctx, m->name, ch, size, 10);
        tap_ok(net->n_layers > 10 && net->loss, "%s builds for %lldx%lldx%lld (%d layers)", m->name,
               (long long)ch, (long long)size, (long long)size, net->n_layers);
        dnal_net_destroy(net);
    }
    tap_ok(dnal_model_find("resnet50") && dnal_model_find("resnet50")->image_size == 224 &&
               dnal_model_find("resnet56")->classes == 10 && !dnal_model_find("resnet57"),
           "the zoo's table gives each model its published input (resnet50: 224, resnet56: 10 "
           "classes)");
    dnal_ctx_destroy(ctx);
    return tap_done();
}
