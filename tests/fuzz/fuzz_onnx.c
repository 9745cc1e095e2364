/* The ONNX importer: the input is an .onnx file. Whatever parses and passes
 * every check is planned (gates) and built into a network without
 * activations or primitives (what dnal info's plan builds), so the checks
 * must leave nothing the builder could trip on. */
#include "fuzz.h"
#include "dnal/models.h"

static dnal_ctx *ctx;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    if (!ctx) {
        ctx = dnal_ctx_create();
        ctx->params_only = 1;
    }
    const char *path = fuzz_write("m.onnx", data, size);
    int fds = fuzz_fd_base();
    if (setjmp(fuzz_jump) == 0) {
        dnal_model_cfg m = {.name = DNAL_MODEL_ONNX, .batch = 2, .width = 1};
        snprintf(m.path, sizeof m.path, "%s", path);
        dnal_onnx_shape(path, "", &m.in_channels, &m.image_size, &m.classes);
        dnal_net *net = dnal_model_build(ctx, &m);
        dnal_model_start(net, &m, 1);
        dnal_net_destroy(net);
    }
    fuzz_close_from(fds);
    return 0;
}
