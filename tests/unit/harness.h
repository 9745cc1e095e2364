/* Test helpers for layers and small nets: deterministic random fills, a
 * scalar loss over a net's output, and central finite differences. */
#ifndef DNAL_TEST_HARNESS_H
#define DNAL_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "dnal/net.h"

/* uniform in [lo, hi), from a splitmix64 state */
void h_fill(float *x, size_t n, double lo, double hi, uint64_t *state);
/* uniform, but at least `gap` away from every value in `avoid` (kinks) */
void h_fill_away(float *x, size_t n, double lo, double hi, const float *avoid, int navoid,
                 double gap, uint64_t *state);
/* n distinct values spaced by `step`, randomly permuted (max pooling: no ties) */
void h_fill_distinct(float *x, size_t n, double step, uint64_t *state);

/* The last layer's output tensor (NULL for a net ending in softmax-CE). */
dnal_tensor *h_output(const dnal_net *net);
/* L = CE loss of the net or, without a loss layer, sum(y * r) over the output. */
double h_loss(dnal_net *net, const dnal_pass *p, const float *r);
/* backward of h_loss: d(output) = r unless the net has a loss layer */
void h_backward(dnal_net *net, const dnal_pass *p, const float *r);

/* The activation layout a 3x3 convolution picks for this shape on this CPU
 * (nChw16c with AVX-512, nChw8c with AVX2): what layers meet inside a net. */
dnal_md h_native_md(const dnal_ctx *ctx, const int64_t dims[4]);
/* tag: "native" or a dnal_md_tag4 name */
dnal_md h_md(const dnal_ctx *ctx, const int64_t dims[4], const char *tag);

/* Writes the plain input x into the net's input tensor (any layout). */
void h_set_input(dnal_net *net, const float *x);

/* Central differences of h_loss with respect to v[i] for `samples` indices
 * (all if n <= samples); `input` set: v is the plain input, rewritten after
 * each change. Returns max |fd - an| / max |an| over the sample; an entry
 * off by more than 1e-3 is retried with a quarter step (a kink in reach). */
double h_fd_check(dnal_net *net, const dnal_pass *p, const float *r, float *v, const float *an,
                  size_t n, double h, int samples, int input, uint64_t *state);

#endif
