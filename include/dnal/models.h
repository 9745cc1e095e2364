/* dnal models: builders of the model zoo with DNAL's gate placement
 * (docs/design.md, "The method"). Every model ends with softmax cross-entropy.
 *
 *   vgg16                CIFAR VGG16 with BN: 13 convs, classifier 512-512-K
 *   resnet20/56/110      CIFAR ResNets (basic blocks, zero-padded shortcuts)
 *   mobilenetv2          CIFAR variant (stride-1 stem, second stage stride 1)
 *   resnet18/34/50       ImageNet ResNets (projection shortcuts)
 *   vgg16-imagenet       VGG16 with BN, classifier 4096-4096-K
 *   mobilenetv2-imagenet MobileNetV2 1.0
 *   proxyless-supernet   ProxylessNAS mobile-space supernet: 21 edges, each the
 *                        sum of six MBConv candidates {k3,5,7} x {expand 3,6}
 *                        (CIFAR variant below 64 pixels: stride-1 stem and
 *                        first stage)
 *   onnx                 the network of an ONNX file (model.path; src/models/
 *                        onnx_*.c), its initializers the starting weights,
 *                        gates placed by the same rule (onnx_gates.c)
 *
 * Gates: VGG16 after every conv's BN; ResNets after every BN inside a
 * residual branch (not the stem, not the shortcut); MobileNetV2 after the
 * depthwise BN, after the projection BN and after the final 1x1 conv's BN;
 * the supernet likewise in every candidate (its two gates form a removable
 * branch: layer->branch, branch_set) and the fixed first block. */
#ifndef DNAL_MODELS_H
#define DNAL_MODELS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dnal/net.h"

/* model.name=onnx: not in the zoo's table; its input is the file's */
#define DNAL_MODEL_ONNX "onnx"

typedef struct dnal_model_cfg {
    const char *name;
    int64_t batch, in_channels, image_size, classes;
    double width; /* width multiplier (1.0: the published network) */
    /* onnx only: the file (absolute once resolved), its SHA-256 ("": not
     * checked; a checkpoint's must match) and the nodes left ungated
     * (model.no_gate, comma-separated) */
    char path[1024];
    char sha256[DNAL_SHA256_HEX];
    char no_gate[512];
    int gate_stem;     /* ResNets: the stem gated too (the authors' ResNet-50) */
    int classifier_bn; /* vgg16-imagenet: Linear-BN-ReLU hidden layers (the authors') */
} dnal_model_cfg;

/* A model of the zoo and the input it was published for (CIFAR-10:
 * 3x32x32, 10 classes; ImageNet: 3x224x224, 1000): what `dnal bench`
 * builds unless told otherwise. Every model builds at other sizes too. */
typedef struct dnal_model_spec {
    const char *name;
    int64_t in_channels, image_size, classes;
} dnal_model_spec;

/* The zoo's entry of that name, or NULL. */
const dnal_model_spec *dnal_model_find(const char *name);
/* The same, or exit 1 naming the known models. */
const dnal_model_spec *dnal_model_get(const char *name);
/* The zoo's names, comma-separated, into out. */
void dnal_model_names(char *out, size_t len);
/* The zoo's entries, 0 .. dnal_model_count() - 1. */
int dnal_model_count(void);
const dnal_model_spec *dnal_model_at(int i);

/* NULL if the model takes cfg's options (gate_stem, classifier_bn), else
 * why not, naming the key (model.gate_stem: ...). */
const char *dnal_model_options_refused(const dnal_model_cfg *cfg);

/* Builds and finalizes the model; an unknown name or a refused option is a
 * usage error (exit 1). onnx: the file is read and checked whole first
 * (exit 2 if it is not a well-formed model or not the file of cfg->sha256;
 * exit 1 naming the node for what dnal does not implement, or for an input
 * or class count other than cfg's). */
dnal_net *dnal_model_build(const dnal_ctx *ctx, const dnal_model_cfg *cfg);

/* onnx: cfg->path made absolute and cfg->sha256 the file's (exit 2 naming
 * it if unreadable); other models: nothing. */
void dnal_model_resolve(dnal_model_cfg *cfg);
/* The input (C x size x size) and classes an ONNX file declares, the file
 * checked whole and its gates planned (as dnal_model_build). */
void dnal_onnx_shape(const char *path, const char *no_gate, int64_t *in_channels,
                     int64_t *image_size, int64_t *classes);
/* The starting weights: dnal_model_init from the seed, then for onnx the
 * file's initializers (weights, biases, BN parameters and statistics). */
void dnal_model_start(dnal_net *net, const dnal_model_cfg *cfg, uint64_t seed);
/* dnal info's plan: one line per conv and linear layer (its gate or why it
 * has none, FLOPs and parameters), then the totals. */
void dnal_model_plan(const dnal_ctx *ctx, const dnal_model_cfg *cfg, FILE *out);

/* Initialises parameters from the seed (GSL MT19937): conv weights He-normal
 * with fan-out (as torchvision's ResNet), conv biases 0, BN scale 1 and
 * shift 0, linear weights and biases uniform +-1/sqrt(fan_in), alpha 0,
 * masks 1, running mean 0 and variance 1. */
void dnal_model_init(dnal_net *net, uint64_t seed);

#endif
