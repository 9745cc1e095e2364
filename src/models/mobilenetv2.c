/* MobileNetV2 (Sandler et al. 2018, torchvision's layout). Each inverted
 * residual block: 1x1 expansion (conv, BN, ReLU6; skipped for t = 1), 3x3
 * depthwise (conv, BN, gate, ReLU6), 1x1 projection (conv, BN, gate), and the
 * identity shortcut when the stride is 1 and the width is kept. The gate
 * after the depthwise BN governs the expansion's channels too (a depthwise
 * channel reads one expanded channel). Final 1x1 conv to 1280 (BN, gate,
 * ReLU6), global pooling, classifier. CIFAR variant: stride-1 stem and
 * stride 1 in the second stage (32x32 inputs keep a 4x4 final map). */
#include <math.h>

#include <stdio.h>

#include "builder.h"

void mobilenetv2(mb *b, const dnal_model_cfg *cfg, int imagenet)
{
    static const int plan[7][4] = {/* t, c, n, s */
                                   {1, 16, 1, 1},  {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                                   {6, 96, 3, 1},  {6, 160, 3, 2}, {6, 320, 1, 1}};
    double w = cfg->width;
    char prefix[32];
    dnal_tensor *x = mb_unit(b, "stem", "", b->net->input, mb_divisible8(32 * w), 3, imagenet ? 2 : 1,
                             1, 0, ACT_RELU6);
    int block = 0;
    for (int s = 0; s < 7; s++) {
        int64_t t = plan[s][0], c = mb_divisible8(plan[s][1] * w);
        int stride0 = (!imagenet && s == 1) ? 1 : plan[s][3];
        for (int i = 0; i < plan[s][2]; i++) {
            int64_t stride = i == 0 ? stride0 : 1, in_c = x->c;
            int64_t hidden = (int64_t)llround((double)in_c * (double)t);
            snprintf(prefix, sizeof prefix, "features.%d", ++block);
            dnal_tensor *y = x;
            if (t != 1)
                y = mb_unit(b, prefix, "_expand", y, hidden, 1, 1, 1, 0, ACT_RELU6);
            y = mb_unit(b, prefix, "_dw", y, hidden, 3, stride, hidden, 1, ACT_RELU6);
            y = mb_unit(b, prefix, "_project", y, c, 1, 1, 1, 1, ACT_NONE);
            if (stride == 1 && in_c == c)
                y = dnal_net_residual(b->net, mb_name(b, "%s.add", prefix), y, x);
            x = y;
        }
    }
    int64_t last = mb_divisible8(1280 * (w > 1.0 ? w : 1.0));
    x = mb_unit(b, "features.last", "", x, last, 1, 1, 1, 1, ACT_RELU6);
    mb_head(b, x, cfg->classes);
}
