/* VGG16 with batch norm: 13 3x3 convs (conv, BN, gate, ReLU) in 5 stages
 * separated by 2x2 max pooling. CIFAR classifier (Li et al. 2017, the 313.5M
 * multiply-add network): linear 512-512, BN, ReLU, linear 512-K. ImageNet:
 * linear 25088-4096-4096-K with ReLUs, with model.classifier_bn a BN after
 * each hidden linear layer (the authors' vgg_AutoML.py; dropout is not
 * implemented). A pool
 * that would shrink a 1x1 map is skipped, so small images (28x28) work. */
#include <stdio.h>

#include "builder.h"

void vgg16(mb *b, const dnal_model_cfg *cfg, int imagenet)
{
    static const int plan[] = {64, 64, 0, 128, 128, 0, 256, 256, 256, 0,
                               512, 512, 512, 0, 512, 512, 512, 0}; /* 0: max pool */
    dnal_tensor *x = b->net->input;
    char suffix[16];
    int conv = 0, pool = 0;
    for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++) {
        if (plan[i] == 0) {
            pool++;
            if (x->h >= 2)
                x = dnal_net_pool(b->net, mb_name(b, "features.pool%d", pool), DNAL_MAXPOOL, x, 2, 2, 0);
            continue;
        }
        snprintf(suffix, sizeof suffix, "%d", ++conv);
        x = mb_unit(b, "features", suffix, x, mb_scale(plan[i], cfg->width), 3, 1, 1, 1, ACT_RELU);
    }
    if (imagenet) {
        int64_t hidden = mb_scale(4096, cfg->width);
        x = dnal_net_linear(b->net, "classifier.fc1", x, hidden, 1);
        if (cfg->classifier_bn)
            x = dnal_net_bn(b->net, "classifier.bn1", x);
        x = dnal_net_relu(b->net, "classifier.relu1", x, 0);
        x = dnal_net_linear(b->net, "classifier.fc2", x, hidden, 1);
        if (cfg->classifier_bn)
            x = dnal_net_bn(b->net, "classifier.bn2", x);
        x = dnal_net_relu(b->net, "classifier.relu2", x, 0);
    } else {
        x = dnal_net_linear(b->net, "classifier.fc1", x, mb_scale(512, cfg->width), 1);
        x = dnal_net_bn(b->net, "classifier.bn1", x);
        x = dnal_net_relu(b->net, "classifier.relu1", x, 0);
    }
    x = dnal_net_linear(b->net, "fc", x, cfg->classes, 1);
    dnal_net_softmax_ce(b->net, "loss", x);
}
