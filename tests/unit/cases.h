/* The small networks the layer tests run: one per layer kind plus a ResNet
 * basic block. Names match the groups of tests/ref/fixtures.h5. */
#ifndef DNAL_TEST_CASES_H
#define DNAL_TEST_CASES_H

#include "dnal/net.h"

typedef dnal_tensor *(*build_fn)(dnal_net *net, dnal_tensor *x);

typedef struct layer_case {
    const char *name;
    int ndims;
    int64_t n, c, h, w;  /* input */
    const char *layout;  /* "native", "nchw", "nhwc", "nChw16c", or "nc" (2-D) */
    build_fn build;      /* appends the layers; NULL output = ends in softmax-CE */
    int has_fixture;     /* a PyTorch reference exists */
    int fused_gates, fused_relus; /* what finalize fuses (src/net/fuse.c) */
} layer_case;

extern const layer_case layer_cases[];
extern const int n_layer_cases;
const layer_case *case_find(const char *name);
/* A net for the case, with d(input) kept, finalized; with an "nhwc" input
 * its convolutions write channels last too. */
dnal_net *case_net(const dnal_ctx *ctx, const layer_case *lc, const char *layout_override);
/* The same, with fuse 0: every layer runs on its own (net->no_fuse). */
dnal_net *case_net_fuse(const dnal_ctx *ctx, const layer_case *lc, const char *layout_override,
                        int fuse);

#endif
