/* Shared pieces of the model builders (not installed). */
#ifndef DNAL_MODELS_BUILDER_H
#define DNAL_MODELS_BUILDER_H

#include "dnal/models.h"

enum { ACT_NONE = -1, ACT_RELU = 0, ACT_RELU6 = 6 };

typedef struct mb {
    dnal_net *net;
    char name[64];
} mb;

/* The unit every model is made of: conv (padding k/2, no bias), BN, an
 * optional gate and an optional activation, named PREFIX.convSUFFIX,
 * PREFIX.bnSUFFIX, PREFIX.gateSUFFIX and PREFIX.reluSUFFIX. */
dnal_tensor *mb_unit(mb *b, const char *prefix, const char *suffix, dnal_tensor *x, int64_t out_c,
                     int64_t kernel, int64_t stride, int64_t groups, int gated, int act);
/* Global average pooling, the classifier and the loss. */
void mb_head(mb *b, dnal_tensor *x, int64_t classes);
const char *mb_name(mb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* torchvision's _make_divisible: v rounded to a multiple of 8, never below
 * 90% of v (MobileNetV2 and the supernet) */
int64_t mb_divisible8(double v);
/* round(c * width), at least 1 */
int64_t mb_scale(int64_t c, double width);

/* The builders of the zoo's table (zoo.c): each adds its layers to b->net;
 * the last argument picks a variant (a depth; 1 = the ImageNet form). */
void resnet_cifar(mb *b, const dnal_model_cfg *cfg, int depth);
void resnet_imagenet(mb *b, const dnal_model_cfg *cfg, int depth);
void vgg16(mb *b, const dnal_model_cfg *cfg, int imagenet);
void mobilenetv2(mb *b, const dnal_model_cfg *cfg, int imagenet);
void convnet(mb *b, const dnal_model_cfg *cfg, int unused);
void proxyless_supernet(mb *b, const dnal_model_cfg *cfg, int unused);
/* model.name=onnx (onnx_import.c) */
dnal_net *onnx_model_build(const dnal_ctx *ctx, const dnal_model_cfg *cfg);

#endif
