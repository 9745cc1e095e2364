/* A conv-BN-ReLU-conv stack keeps the activation layout oneDNN picked: every
 * layer's forward primitive reads exactly the layout its producer wrote, so
 * no reorder runs between layers. Checked from the primitive descriptors. */
#include "dnal/net.h"
#include "tap.h"

static void check_stack(const dnal_ctx *ctx, int64_t c_in, int64_t width, int64_t hw)
{
    dnal_net *net = dnal_net_create(ctx, 8, c_in, hw, hw);
    dnal_conv_cfg c1 = {.out_c = width, .kernel = 3, .stride = 1, .pad = 1, .groups = 1};
    dnal_conv_cfg c2 = {.out_c = width, .kernel = 3, .stride = 1, .pad = 1, .groups = 1};
    dnal_tensor *t = dnal_net_conv(net, "conv1", net->input, &c1);
    t = dnal_net_bn(net, "bn1", t);
    t = dnal_net_relu(net, "relu1", t, 0);
    t = dnal_net_conv(net, "conv2", t, &c2);
    t = dnal_net_bn(net, "bn2", t);
    t = dnal_net_relu(net, "relu2", t, 0);
    dnal_net_finalize(net);

    char produced[32], read[32];
    for (int i = 1; i < net->n_layers; i++) {
        dnal_layer *l = net->layers[i];
        dnal_md src = dnal_layer_src_md(l);
        int same = dnal_md_equal(&src, &l->in[0]->md);
        tap_ok(same, "C=%lld width %lld: %s reads %s as written by %s (%s)", (long long)c_in,
               (long long)width, l->name, dnal_md_layout_str(&src, read, sizeof read),
               net->layers[i - 1]->name,
               dnal_md_layout_str(&l->in[0]->md, produced, sizeof produced));
    }
    dnal_md mid = net->layers[0]->out->md;
    dnal_chan_view v;
    tap_ok(dnal_md_chan_view(&mid, &v) && v.cb > 1,
           "C=%lld width %lld: conv1 picked a channel-blocked layout (%s)", (long long)c_in,
           (long long)width, dnal_md_layout_str(&mid, produced, sizeof produced));
    dnal_net_destroy(net);
}

int main(void)
{
    dnal_ctx *ctx = dnal_ctx_create();
    check_stack(ctx, 3, 16, 16);  /* image input, CIFAR-like stem */
    check_stack(ctx, 16, 64, 8);
    check_stack(ctx, 16, 13, 8);  /* a pruned, odd width */
    dnal_ctx_destroy(ctx);
    return tap_done();
}
