#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double unif(uint64_t *s)
{
    return (double)(splitmix(s) >> 11) / 9007199254740992.0;
}

void h_fill(float *x, size_t n, double lo, double hi, uint64_t *state)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(lo + (hi - lo) * unif(state));
}

void h_fill_away(float *x, size_t n, double lo, double hi, const float *avoid, int navoid,
                 double gap, uint64_t *state)
{
    for (size_t i = 0; i < n; i++) {
        int ok;
        do {
            x[i] = (float)(lo + (hi - lo) * unif(state));
            ok = 1;
            for (int k = 0; k < navoid; k++)
                ok &= fabs(x[i] - avoid[k]) >= gap;
        } while (!ok);
    }
}

void h_fill_distinct(float *x, size_t n, double step, uint64_t *state)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(step * ((double)i - (double)n / 2));
    for (size_t i = n; i > 1; i--) {
        size_t j = splitmix(state) % i;
        float t = x[i - 1];
        x[i - 1] = x[j];
        x[j] = t;
    }
}

dnal_tensor *h_output(const dnal_net *net)
{
    if (net->loss)
        return NULL;
    return net->layers[net->n_layers - 1]->out;
}

dnal_md h_native_md(const dnal_ctx *ctx, const int64_t dims[4])
{
    int64_t wd[4] = {dims[1], dims[1], 3, 3};
    dnal_md any = dnal_md_any(4, dims), wany = dnal_md_any(4, wd);
    dnal_md src = dnal_md_with_type(&any, ctx->dtype), wei = dnal_md_with_type(&wany, ctx->dtype);
    dnal_pd pd = dnal_pd_conv_fwd(ctx, &src, &wei, NULL, &src, (dnal_conv_geom){1, 1});
    dnal_md md = dnal_pd_md(pd, dnnl_query_dst_md, 0);
    dnnl_primitive_desc_destroy(pd);
    return md;
}

dnal_md h_md(const dnal_ctx *ctx, const int64_t dims[4], const char *tag)
{
    if (!strcmp(tag, "native"))
        return h_native_md(ctx, dims);
    return dnal_md_tag4(dims, tag);
}

void h_set_input(dnal_net *net, const float *x)
{
    dnal_tensor_write(net->ctx, net->input, 0, x);
}

double h_loss(dnal_net *net, const dnal_pass *p, const float *r)
{
    dnal_net_forward(net, p);
    if (net->loss)
        return dnal_softmax_ce_result(net->loss).loss;
    dnal_tensor *y = h_output(net);
    size_t n = dnal_tensor_count(y);
    float *buf = malloc(n * sizeof *buf);
    dnal_tensor_read(net->ctx, y, 0, buf);
    double L = 0.0;
    for (size_t i = 0; i < n; i++)
        L += (double)buf[i] * r[i];
    free(buf);
    return L;
}

void h_backward(dnal_net *net, const dnal_pass *p, const float *r)
{
    if (!net->loss)
        dnal_tensor_write(net->ctx, h_output(net), 1, r);
    dnal_net_backward(net, p, NULL, NULL);
}

static double central(dnal_net *net, const dnal_pass *p, const float *r, float *v, size_t i,
                      double h, int input)
{
    float keep = v[i];
    v[i] = (float)(keep + h);
    double hp = (double)v[i] - keep; /* the step float actually took */
    if (input)
        h_set_input(net, v);
    double lp = h_loss(net, p, r);
    v[i] = (float)(keep - h);
    double hm = keep - (double)v[i];
    if (input)
        h_set_input(net, v);
    double lm = h_loss(net, p, r);
    v[i] = keep;
    if (input)
        h_set_input(net, v);
    return (lp - lm) / (hp + hm);
}

double h_fd_check(dnal_net *net, const dnal_pass *p, const float *r, float *v, const float *an,
                  size_t n, double h, int samples, int input, uint64_t *state)
{
    double maxan = 0.0, worst = 0.0;
    for (size_t i = 0; i < n; i++)
        maxan = fmax(maxan, fabs(an[i]));
    double denom = fmax(maxan, 1e-6);
    size_t count = n < (size_t)samples ? n : (size_t)samples;
    for (size_t s = 0; s < count; s++) {
        size_t i = n <= (size_t)samples ? s : splitmix(state) % n;
        double err = fabs(central(net, p, r, v, i, h, input) - an[i]) / denom;
        /* a ReLU or max-pool kink within the step spoils one difference; a
         * quarter step (or a sixteenth: a BN shift moves every pixel of its
         * channel, so a kink is often near) misses it, while a wrong
         * gradient stays wrong */
        for (double q = 4; err > 1e-3 && q <= 16; q *= 4)
            err = fmin(err, fabs(central(net, p, r, v, i, h / q, input) - an[i]) / denom);
        worst = fmax(worst, err);
    }
    return worst;
}
