/* The model zoo: one table of the models (name, builder, the input they
 * were published for), building and initialisation. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "builder.h"

typedef struct model_entry {
    dnal_model_spec spec;
    void (*build)(mb *b, const dnal_model_cfg *cfg, int variant);
    int variant; /* a depth; 1 = the ImageNet form; omitted: 0 */
} model_entry;

/* CIFAR-10 shape (3x32x32, 10 classes) or ImageNet's (3x224x224, 1000) */
#define CIFAR(name) {name, 3, 32, 10}
#define IMAGENET(name) {name, 3, 224, 1000}
static const model_entry zoo[] = {
    {CIFAR("vgg16"), .build = vgg16},
    {CIFAR("resnet20"), .build = resnet_cifar, .variant = 20},
    {CIFAR("resnet56"), .build = resnet_cifar, .variant = 56},
    {CIFAR("resnet110"), .build = resnet_cifar, .variant = 110},
    {CIFAR("mobilenetv2"), .build = mobilenetv2},
    {IMAGENET("resnet18"), .build = resnet_imagenet, .variant = 18},
    {IMAGENET("resnet34"), .build = resnet_imagenet, .variant = 34},
    {IMAGENET("resnet50"), .build = resnet_imagenet, .variant = 50},
    {IMAGENET("vgg16-imagenet"), .build = vgg16, .variant = 1},
    {IMAGENET("mobilenetv2-imagenet"), .build = mobilenetv2, .variant = 1},
    {CIFAR("convnet"), .build = convnet},
    {IMAGENET("proxyless-supernet"), .build = proxyless_supernet},
};
enum { ZOO_SIZE = sizeof zoo / sizeof zoo[0] };

static const model_entry *find_entry(const char *name)
{
    for (int i = 0; i < ZOO_SIZE; i++)
        if (!strcmp(zoo[i].spec.name, name))
            return &zoo[i];
    return NULL;
}

/* onnx: its input is the file's (0 here) */
static const dnal_model_spec onnx_spec = {DNAL_MODEL_ONNX, 0, 0, 0};

const dnal_model_spec *dnal_model_find(const char *name)
{
    const model_entry *e = find_entry(name);
    return e ? &e->spec : !strcmp(name, DNAL_MODEL_ONNX) ? &onnx_spec : NULL;
}

void dnal_model_names(char *out, size_t len)
{
    out[0] = '\0';
    for (int i = 0; i < ZOO_SIZE; i++)
        snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? ", " : "", zoo[i].spec.name);
    snprintf(out + strlen(out), len - strlen(out), ", onnx (with model.path=FILE.onnx)");
}

/* the zoo's entry, or exit 1 naming the known models */
static const model_entry *get_entry(const char *name)
{
    const model_entry *e = find_entry(name);
    if (!e && strcmp(name, DNAL_MODEL_ONNX)) {
        char known[512];
        dnal_model_names(known, sizeof known);
        dnal_fatal(DNAL_EXIT_USAGE, "model.name: unknown model '%s' (known: %s)", name, known);
    }
    return e;
}

const dnal_model_spec *dnal_model_get(const char *name)
{
    const model_entry *e = get_entry(name);
    return e ? &e->spec : &onnx_spec;
}

int dnal_model_count(void)
{
    return ZOO_SIZE;
}

const dnal_model_spec *dnal_model_at(int i)
{
    return i >= 0 && i < ZOO_SIZE ? &zoo[i].spec : NULL;
}

const char *mb_name(mb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->name, sizeof b->name, fmt, ap);
    va_end(ap);
    return b->name;
}

int64_t mb_divisible8(double v)
{
    int64_t r = (int64_t)(v + 4) / 8 * 8;
    if (r < 8)
        r = 8;
    if ((double)r < 0.9 * v)
        r += 8;
    return r;
}

int64_t mb_scale(int64_t c, double width)
{
    int64_t s = (int64_t)llround((double)c * width);
    return s > 0 ? s : 1;
}

dnal_tensor *mb_unit(mb *b, const char *prefix, const char *suffix, dnal_tensor *x, int64_t out_c,
                     int64_t kernel, int64_t stride, int64_t groups, int gated, int act)
{
    dnal_conv_cfg c = {.out_c = out_c, .kernel = kernel, .stride = stride, .pad = kernel / 2,
                       .groups = groups};
    dnal_tensor *t = dnal_net_conv(b->net, mb_name(b, "%s.conv%s", prefix, suffix), x, &c);
    t = dnal_net_bn(b->net, mb_name(b, "%s.bn%s", prefix, suffix), t);
    if (gated)
        t = dnal_net_gate(b->net, mb_name(b, "%s.gate%s", prefix, suffix), t);
    if (act != ACT_NONE)
        t = dnal_net_relu(b->net, mb_name(b, "%s.relu%s", prefix, suffix), t, (float)act);
    return t;
}

void mb_head(mb *b, dnal_tensor *x, int64_t classes)
{
    x = dnal_net_gap(b->net, "avgpool", x);
    x = dnal_net_linear(b->net, "fc", x, classes, 1);
    dnal_net_softmax_ce(b->net, "loss", x);
}

typedef struct model_build {
    const model_entry *e;
    const dnal_model_cfg *cfg;
} model_build;

static void add_layers(dnal_net *net, void *arg)
{
    const model_build *m = arg;
    mb b = {.net = net};
    m->e->build(&b, m->cfg, m->e->variant);
}

const char *dnal_model_options_refused(const dnal_model_cfg *cfg)
{
    const model_entry *e = find_entry(cfg->name);
    if (!e) /* an unknown name's own error comes first */
        return strcmp(cfg->name, DNAL_MODEL_ONNX) || !(cfg->gate_stem || cfg->classifier_bn)
                   ? NULL
                   : "model.gate_stem and model.classifier_bn are for the zoo's networks "
                     "(model.no_gate places an ONNX graph's gates)";
    /* (MobileNetV2's first depthwise gate governs the stem's channels already) */
    if (cfg->gate_stem && e->build != resnet_cifar && e->build != resnet_imagenet)
        return "model.gate_stem: only the ResNets have an ungated stem";
    if (cfg->classifier_bn && !(e->build == vgg16 && e->variant == 1))
        return "model.classifier_bn: only vgg16-imagenet has hidden linear layers without BN";
    return NULL;
}

dnal_net *dnal_model_build(const dnal_ctx *ctx, const dnal_model_cfg *cfg)
{
    const char *n = cfg->name;
    const model_entry *e = get_entry(n);
    const char *refused = dnal_model_options_refused(cfg);
    if (refused)
        dnal_fatal(DNAL_EXIT_USAGE, "model %s: %s", n, refused);
    if (cfg->width <= 0 || cfg->batch < 1 || cfg->classes < 2 || cfg->in_channels < 1)
        dnal_fatal(DNAL_EXIT_USAGE, "model %s: bad shape (batch %lld, %lld input channels, %lld classes, width %g)",
                   n, (long long)cfg->batch, (long long)cfg->in_channels, (long long)cfg->classes,
                   cfg->width);
    if (!e)
        return onnx_model_build(ctx, cfg);
    int64_t input[4] = {cfg->batch, cfg->in_channels, cfg->image_size, cfg->image_size};
    return dnal_net_build(ctx, input, add_layers, &(model_build){e, cfg});
}

void dnal_model_init(dnal_net *net, uint64_t seed)
{
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, (unsigned long)seed);
    for (int i = 0; i < net->n_layers; i++) {
        dnal_layer *l = net->layers[i];
        for (int k = 0; k < l->n_params; k++) {
            dnal_param *p = &l->param[k];
            float *w = dnal_net_param(net, l, k);
            if (l->kind == DNAL_CONV && k == 0) {
                double fan_out = (double)(p->dims[0] * p->dims[2] * p->dims[3]);
                double sd = sqrt(2.0 / fan_out);
                for (size_t j = 0; j < p->count; j++)
                    w[j] = (float)gsl_ran_gaussian(rng, sd);
            } else if (l->kind == DNAL_LINEAR) {
                double bound = 1.0 / sqrt((double)l->param[0].dims[1]);
                for (size_t j = 0; j < p->count; j++)
                    w[j] = (float)gsl_ran_flat(rng, -bound, bound);
            } else {
                /* conv bias 0, BN scale 1 and shift 0 */
                float v = (l->kind == DNAL_BN && k == 0) ? 1.0f : 0.0f;
                for (size_t j = 0; j < p->count; j++)
                    w[j] = v;
            }
        }
        if (l->kind == DNAL_BN) {
            float *stats = net->stats + l->stats_off;
            size_t c = l->n_stats / 2;
            for (size_t j = 0; j < c; j++) {
                stats[j] = 0.0f;
                stats[c + j] = 1.0f;
            }
        }
    }
    for (size_t c = 0; c < net->n_gates; c++) {
        net->alpha[c] = 0.0f;
        net->mask[c] = 1.0f;
    }
    gsl_rng_free(rng);
}
