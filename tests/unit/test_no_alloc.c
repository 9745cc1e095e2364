/* Nothing is allocated inside the step loop: after a warm-up step, forward
 * and backward of a small gated residual network (conv, BN, gate, ReLU,
 * residual add, pooling, linear, softmax-CE) make no heap allocation from
 * dnal's own code, and the heap in use stops growing; in f32 and (where
 * oneDNN runs it) with bf16 activations.
 *
 * oneDNN 2.6 itself allocates inside dnnl_primitive_execute: a small map of
 * the arguments on every call, and the GEMM-based inner product its packing
 * buffer (16 KiB for the classifier here); both are freed before it returns.
 * The test interposes malloc and friends (glibc) and attributes each call to
 * the object file of its caller, so it is not built with the sanitizers,
 * which interpose them too. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dnal/net.h"
#include "tap.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static volatile int counting;
static long ours, theirs; /* allocations called from dnal (library or test) / elsewhere */

static void count(void *caller)
{
    if (!counting)
        return;
    counting = 0; /* dladdr must not recurse into the count */
    Dl_info info;
    int known = dladdr(caller, &info) && info.dli_fname;
    int dnal = known && (strstr(info.dli_fname, "libdnal") || strstr(info.dli_fname, "test_no_alloc"));
    if (dnal)
        ours++;
    else
        theirs++;
    counting = 1;
}

void *malloc(size_t n)
{
    count(__builtin_return_address(0));
    return __libc_malloc(n);
}
void *calloc(size_t n, size_t m)
{
    count(__builtin_return_address(0));
    return __libc_calloc(n, m);
}
void *realloc(void *p, size_t n)
{
    count(__builtin_return_address(0));
    return __libc_realloc(p, n);
}
int posix_memalign(void **p, size_t align, size_t n)
{
    count(__builtin_return_address(0));
    *p = __libc_memalign(align, n);
    return *p ? 0 : 12;
}
void *aligned_alloc(size_t align, size_t n)
{
    count(__builtin_return_address(0));
    return __libc_memalign(align, n);
}

static void steps(dnal_net *net, int n)
{
    dnal_pass train = {.training = 1, .gate_mode = DNAL_GATE_SEARCH, .beta = 3};
    dnal_pass eval = {.training = 0, .gate_mode = DNAL_GATE_PRUNED, .beta = 3};
    for (int i = 0; i < n; i++) {
        dnal_net_forward(net, &train);
        dnal_net_backward(net, &train, NULL, NULL);
        dnal_net_forward(net, &eval);
    }
}

static void check(const dnal_ctx *ctx)
{
    const char *dt = ctx->dtype == dnnl_bf16 ? "bf16" : "f32";
    ours = theirs = 0;
    dnal_net *net = dnal_net_create(ctx, 8, 3, 16, 16);
    dnal_conv_cfg stem = {.out_c = 16, .kernel = 3, .stride = 1, .pad = 1, .groups = 1};
    dnal_tensor *x = dnal_net_conv(net, "stem", net->input, &stem);
    x = dnal_net_relu(net, "stem_relu", dnal_net_bn(net, "stem_bn", x), 0);
    dnal_tensor *t = dnal_net_conv(net, "conv1", x, &stem);
    t = dnal_net_relu(net, "relu1", dnal_net_gate(net, "gate1", dnal_net_bn(net, "bn1", t)), 0);
    t = dnal_net_conv(net, "conv2", t, &stem);
    t = dnal_net_gate(net, "gate2", dnal_net_bn(net, "bn2", t));
    t = dnal_net_relu(net, "relu2", dnal_net_sum(net, "add", t, x), 0);
    t = dnal_net_pool(net, "pool", DNAL_MAXPOOL, t, 2, 2, 0);
    t = dnal_net_linear(net, "fc", dnal_net_gap(net, "gap", t), 10, 1);
    dnal_net_softmax_ce(net, "ce", t);
    dnal_net_finalize(net);

    int32_t labels[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    dnal_net_set_labels(net, labels);
    float *in = dnal_tensor_data(net->input);
    for (size_t i = 0; i < dnal_tensor_count(net->input); i++)
        in[i] = (float)((i * 37) % 101) / 101.0f - 0.5f;
    for (size_t i = 0; i < net->n_param; i++)
        net->param[i] += 0.01f * (float)((int)(i % 7) - 3);

    steps(net, 2); /* warm-up: OpenMP and oneDNN set up their threads */
    counting = 1;
    steps(net, 2);
    size_t before = mallinfo2().uordblks;
    steps(net, 3);
    size_t after = mallinfo2().uordblks;
    counting = 0;
    tap_ok(ours == 0, "%s: 5 training steps and evaluations: %ld allocations by dnal (oneDNN made %ld)",
           dt, ours, theirs);
    tap_ok(after == before, "%s: the heap in use does not grow over 3 more steps (%zu -> %zu bytes)",
           dt, before, after);
    dnal_net_destroy(net);
}

int main(void)
{
    dnal_ctx *ctx = dnal_ctx_create();
    check(ctx);
    if (dnal_ctx_set_dtype(ctx, dnnl_bf16)) /* run.dtype=bf16, where oneDNN has it */
        check(ctx);
    else
        tap_skip("bf16 steps: oneDNN creates no bf16 primitives on ISA %s", dnal_isa_name());
    dnal_ctx_destroy(ctx);
    return tap_done();
}
