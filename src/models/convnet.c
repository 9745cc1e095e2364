/* convnet: a small CNN without batch norm, 4 gated 3x3 convs with bias
 * (16, 32 | pool | 64, 64), global pooling and the classifier. Its step is
 * the same however the batch is split over ranks (per-rank BN statistics
 * would not be): the distributed equivalence tests run it. */
#include "builder.h"

void convnet(mb *b, const dnal_model_cfg *cfg, int variant)
{
    static const int plan[] = {16, 32, 0, 64, 64}; /* 0: max pool */
    dnal_tensor *x = b->net->input;
    int conv = 0;
    for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++) {
        if (plan[i] == 0) {
            x = dnal_net_pool(b->net, "features.pool", DNAL_MAXPOOL, x, 2, 2, 0);
            continue;
        }
        conv++;
        dnal_conv_cfg c = {.out_c = mb_scale(plan[i], cfg->width), .kernel = 3, .stride = 1,
                           .pad = 1, .groups = 1, .bias = 1};
        x = dnal_net_conv(b->net, mb_name(b, "features.conv%d", conv), x, &c);
        x = dnal_net_gate(b->net, mb_name(b, "features.gate%d", conv), x);
        x = dnal_net_relu(b->net, mb_name(b, "features.relu%d", conv), x, 0);
    }
    mb_head(b, x, cfg->classes);
}
