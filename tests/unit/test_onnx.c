/* The ONNX importer against PyTorch (the .onnx files of tests/ref/onnx/ and
 * tests/ref/onnx_ref.h5, written by tests/ref/make_onnx_models.py with
 * Debian's PyTorch 1.13 and torchvision 0.14):
 *  - the CIFAR ResNet-20 (zero-padded shortcut through Slice and Pad, BN
 *    initializers shared through Identity nodes), torchvision's ResNet-18
 *    layout and MobileNetV2: dnal's logits on PyTorch's batch equal
 *    PyTorch's to 1e-4 relative, the parameters counted equal PyTorch's;
 *  - the imported ResNet-20 has the zoo's resnet20 (same width and input):
 *    its gated channels, FLOPs and parameters;
 *  - gate placement is safe: random masks on each imported network, then
 *    its compact network gives the masked network's logits (1e-4) and its
 *    cost equals the masked cost;
 *  - SHA-256 against the FIPS 180-2 test vectors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "dnal/io.h"
#include "tap.h"

static uint64_t state = 99;
static double unif(void)
{
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(state >> 11) / 9007199254740992.0;
}

static float *read_f32(hid_t f, const char *name, size_t *n)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT), s = H5Dget_space(d);
    *n = (size_t)H5Sget_simple_extent_npoints(s);
    float *v = malloc(sizeof *v * *n);
    H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Sclose(s);
    H5Dclose(d);
    return v;
}

static double max_rel(const float *a, const float *b, size_t n)
{
    double diff = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)b[i]));
    }
    return diff / scale;
}

static float *logits_of(dnal_net *net, const float *x, const dnal_pass *p, size_t *n)
{
    dnal_tensor_write(net->ctx, net->input, 0, x);
    dnal_net_forward(net, p);
    const dnal_tensor *z = net->loss->in[0];
    *n = dnal_tensor_count(z);
    float *y = malloc(sizeof *y * *n);
    dnal_tensor_read(net->ctx, z, 0, y);
    return y;
}

static dnal_net *import(const dnal_ctx *ctx, const char *path, int64_t batch, dnal_model_cfg *m)
{
    *m = (dnal_model_cfg){.name = DNAL_MODEL_ONNX, .batch = batch, .width = 1};
    snprintf(m->path, sizeof m->path, "%s", path);
    dnal_onnx_shape(path, "", &m->in_channels, &m->image_size, &m->classes);
    dnal_net *net = dnal_model_build(ctx, m);
    dnal_model_start(net, m, 1);
    static int32_t labels[16];
    dnal_net_set_labels(net, labels);
    return net;
}

static void against_torch(const dnal_ctx *ctx, hid_t ref, const char *dir, const char *name)
{
    char path[8192], key[128];
    snprintf(path, sizeof path, "%s/%s.onnx", dir, name);
    size_t nx, ny, n;
    snprintf(key, sizeof key, "/%s/input", name);
    float *x = read_f32(ref, key, &nx);
    snprintf(key, sizeof key, "/%s/logits", name);
    float *want = read_f32(ref, key, &ny);
    dnal_model_cfg m;
    dnal_net *net = import(ctx, path, 4, &m);
    dnal_pass p = {.training = 0, .gate_mode = DNAL_GATE_OFF, .beta = 1};
    float *y = logits_of(net, x, &p, &n);
    double err = max_rel(y, want, ny);
    tap_ok(n == ny && err <= 1e-4, "%s: logits equal PyTorch's (max |diff| / max |torch| = %.2e)",
           name, err);
    double torch_params = 0;
    snprintf(key, sizeof key, "/%s", name);
    hid_t g = H5Gopen2(ref, key, H5P_DEFAULT), a = H5Aopen(g, "params", H5P_DEFAULT);
    H5Aread(a, H5T_NATIVE_DOUBLE, &torch_params);
    H5Aclose(a);
    H5Gclose(g);
    dnal_cost c = dnal_net_cost(net, NULL);
    tap_ok(c.params == torch_params, "%s: %.0f parameters, PyTorch counts %.0f", name, c.params,
           torch_params);

    /* random masks (every gate keeps at least one channel), then compact */
    for (int i = 0; i < net->n_layers; i++) {
        const dnal_layer *l = net->layers[i];
        if (l->kind != DNAL_GATE)
            continue;
        int kept = 0;
        for (size_t k = 0; k < l->n_gates; k++)
            kept += (net->mask[l->gate_off + k] = unif() < 0.6) > 0;
        if (!kept)
            net->mask[l->gate_off] = 1;
    }
    dnal_pass pruned = {.training = 0, .gate_mode = DNAL_GATE_PRUNED, .beta = 1};
    float *masked = logits_of(net, x, &pruned, &n);
    dnal_cost masked_cost = dnal_net_cost(net, net->mask);
    dnal_net *small = dnal_net_compact(net, 4);
    static int32_t labels[16];
    dnal_net_set_labels(small, labels);
    float *y2 = logits_of(small, x, &pruned, &n);
    dnal_cost small_cost = dnal_net_cost(small, NULL);
    err = max_rel(y2, masked, ny);
    tap_ok(err <= 1e-4 && small_cost.flops == masked_cost.flops &&
           small_cost.params == masked_cost.params,
           "%s: random masks, the compact network's logits equal the masked one's (%.2e), its "
           "cost the masked cost (%.0f of %.0f FLOPs)", name, err, small_cost.flops, c.flops);
    free(x);
    free(want);
    free(y);
    free(masked);
    free(y2);
    dnal_net_destroy(small);
    dnal_net_destroy(net);
}

static void like_the_zoo(const dnal_ctx *ctx, const char *dir)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/resnet20.onnx", dir);
    dnal_model_cfg m;
    dnal_net *net = import(ctx, path, 2, &m);
    dnal_model_cfg z = {.name = "resnet20", .batch = 2, .in_channels = 1, .image_size = 28,
                        .classes = 10, .width = 0.25};
    dnal_net *zoo = dnal_model_build(ctx, &z);
    int gates[2] = {0, 0};
    for (int i = 0; i < net->n_layers; i++)
        gates[0] += net->layers[i]->kind == DNAL_GATE;
    for (int i = 0; i < zoo->n_layers; i++)
        gates[1] += zoo->layers[i]->kind == DNAL_GATE;
    dnal_cost a = dnal_net_cost(net, NULL), b = dnal_net_cost(zoo, NULL);
    tap_ok(net->n_gates == zoo->n_gates && gates[0] == gates[1] && a.flops == b.flops &&
           a.params == b.params,
           "the imported ResNet-20 is the zoo's resnet20 at width 0.25: %d gates of %zu channels "
           "(zoo %d, %zu), %.0f FLOPs (%.0f), %.0f parameters (%.0f)", gates[0], net->n_gates,
           gates[1], zoo->n_gates, a.flops, b.flops, a.params, b.params);
    dnal_net_destroy(zoo);
    dnal_net_destroy(net);
}

static void sha256_vectors(void)
{
    char hex[DNAL_SHA256_HEX];
    dnal_sha256("abc", 3, hex);
    tap_ok(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
           "SHA-256 of \"abc\"");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    dnal_sha256(two, strlen(two), hex);
    tap_ok(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
           "SHA-256 of the 448-bit message");
    char *million = malloc(1000000);
    memset(million, 'a', 1000000);
    dnal_sha256(million, 1000000, hex);
    free(million);
    tap_ok(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
           "SHA-256 of a million a");
}

int main(void)
{
    const char *top = getenv("TOP");
    char dir[4096], refpath[4096];
    snprintf(dir, sizeof dir, "%s/tests/ref/onnx", top ? top : ".");
    snprintf(refpath, sizeof refpath, "%s/tests/ref/onnx_ref.h5", top ? top : ".");
    sha256_vectors();
    hid_t ref = H5Fopen(refpath, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (!tap_ok(ref >= 0, "open %s", refpath))
        return tap_done();
    dnal_ctx *ctx = dnal_ctx_create();
    against_torch(ctx, ref, dir, "resnet20");
    against_torch(ctx, ref, dir, "resnet18");
    against_torch(ctx, ref, dir, "mobilenet_v2");
    like_the_zoo(ctx, dir);
    dnal_ctx_destroy(ctx);
    H5Fclose(ref);
    return tap_done();
}
