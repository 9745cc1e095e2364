/* A test helper (tests/cli/test_onnx.sh): dnal's logits on a batch, for
 * comparing with ONNX Runtime and with PyTorch.
 *
 *   onnx_logits (--onnx F.onnx | --model F.h5 | --checkpoint F.h5) --batch N
 *               [--input IN.f32] OUT_PREFIX
 *
 * The network (an imported ONNX file with its initializers, a model file's
 * compact network, or a checkpoint's network) runs forward in inference
 * mode (running BN statistics; gates: the masks) on N images: read from
 * IN.f32 (N x C x H x W little-endian floats), or a fixed pattern in
 * [-1, 1) written to OUT_PREFIX.input.f32. The logits go to
 * OUT_PREFIX.logits.f32 (N x classes), their shape to stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnal/io.h"

static void write_floats(const char *prefix, const char *what, const float *v, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.%s.f32", prefix, what);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(v, sizeof *v, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "onnx_logits: cannot write %s\n", path);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    const char *onnx = NULL, *model = NULL, *ckpt = NULL, *input = NULL, *prefix = NULL;
    int64_t batch = 4;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--onnx") && i + 1 < argc)
            onnx = argv[++i];
        else if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model = argv[++i];
        else if (!strcmp(argv[i], "--checkpoint") && i + 1 < argc)
            ckpt = argv[++i];
        else if (!strcmp(argv[i], "--input") && i + 1 < argc)
            input = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = atoll(argv[++i]);
        else
            prefix = argv[i];
    }
    if (!prefix || !!onnx + !!model + !!ckpt != 1 || batch < 1) {
        fprintf(stderr, "usage: onnx_logits (--onnx F | --model F | --checkpoint F) --batch N "
                "[--input IN.f32] OUT_PREFIX\n");
        return 1;
    }
    dnal_ctx *ctx = dnal_ctx_create();
    dnal_net *net;
    dnal_pass p = {.training = 0, .gate_mode = DNAL_GATE_PRUNED, .beta = 1};
    if (onnx) {
        dnal_model_cfg m = {.name = DNAL_MODEL_ONNX, .batch = batch, .width = 1};
        snprintf(m.path, sizeof m.path, "%s", onnx);
        dnal_onnx_shape(onnx, "", &m.in_channels, &m.image_size, &m.classes);
        net = dnal_model_build(ctx, &m);
        dnal_model_start(net, &m, 1);
    } else if (model) {
        dnal_model_info info;
        net = dnal_model_load(ctx, model, batch, &info);
    } else {
        dnal_checkpoint_info info;
        net = dnal_checkpoint_load(ctx, ckpt, batch, &info, NULL);
        dnal_checkpoint_info_free(&info);
    }
    size_t n_in = dnal_tensor_count(net->input);
    float *x = malloc(sizeof *x * n_in);
    if (input) {
        FILE *f = fopen(input, "rb");
        if (!f || fread(x, sizeof *x, n_in, f) != n_in) {
            fprintf(stderr, "onnx_logits: %s does not hold %zu floats\n", input, n_in);
            return 2;
        }
        fclose(f);
    } else {
        uint64_t s = 12345;
        for (size_t i = 0; i < n_in; i++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            x[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
        }
        write_floats(prefix, "input", x, n_in);
    }
    dnal_tensor_write(ctx, net->input, 0, x);
    int32_t *labels = calloc((size_t)batch, sizeof *labels);
    dnal_net_set_labels(net, labels);
    dnal_net_forward(net, &p);
    dnal_tensor *z = net->loss->in[0];
    size_t n = dnal_tensor_count(z);
    float *y = malloc(sizeof *y * n);
    dnal_tensor_read(ctx, z, 0, y);
    write_floats(prefix, "logits", y, n);
    printf("logits %lld %lld\n", (long long)batch, (long long)z->c);
    free(x);
    free(y);
    free(labels);
    dnal_net_destroy(net);
    dnal_ctx_destroy(ctx);
    return 0;
}
