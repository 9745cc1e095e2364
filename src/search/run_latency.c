/* A run's latency table (search.latency_table; docs/design.md, "Latency"):
 * read and bound to the dense network when the run opens, handed to the
 * regulariser; at prune, the compact network's step predicted from it and
 * measured against the dense network's on this CPU, in the run's own
 * processes: alternated pairs of a few steps each, the ratio the median of
 * the pairs' ratios (timings swing, so only ratios of neighbours count). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum { PAIRS = 5, STEPS = 3 };

static int latency_of(const dnal_run *r)
{
    return strcmp(r->cfg.search.latency_of, "infer") ? DNAL_LATENCY_TRAIN : DNAL_LATENCY_INFER;
}

void run_latency_open(dnal_run *r)
{
    r->latency_times = dnal_latency_times_none();
    if (!r->cfg.search.latency_table[0])
        return;
    r->latency = dnal_latency_load(r->cfg.search.latency_table, r->net, &r->model);
    /* a layer's time is not linear in the batch (fixed costs weigh more in
     * small ones), and bf16 and f32 kernels differ: the table still ranks
     * channels, but its times and its ratio to dense are another run's */
    const char *dtype = dnal_md_is_bf16(&r->net->layout) ? "bf16" : "f32";
    if ((r->latency->batch != r->model.batch || strcmp(r->latency->dtype, dtype)) &&
        r->dist.rank == 0)
        fprintf(stderr, "dnal: note: %s was measured at a batch of %lld per process in %s, "
                "this run has %lld in %s: its predicted times may not hold here (dnal profile "
                "with this run's data.batch, ranks and run.dtype measures them)\n",
                r->cfg.search.latency_table, (long long)r->latency->batch, r->latency->dtype,
                (long long)r->model.batch, dtype);
    int64_t m = r->cfg.prune.channel_multiple;
    if (m > 0 && m % r->latency->block && r->dist.rank == 0)
        fprintf(stderr, "dnal: note: prune.channel_multiple=%lld is not a multiple of the "
                "table's channel block %lld: a compact network of such counts may run in "
                "another layout (channels last) than the %s the table was measured in, and "
                "its predicted time then does not hold (prune.channel_multiple=auto keeps it)\n",
                (long long)m, (long long)r->latency->block, r->latency->layout);
    dnal_arch_set_latency(&r->arch, r->net, &r->cfg, r->latency);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void run_latency_prune(dnal_run *r, dnal_net *dense, dnal_net *compact)
{
    if (!r->latency)
        return;
    int which = latency_of(r), infer = which == DNAL_LATENCY_INFER;
    dnal_latency_times *t = &r->latency_times;
    snprintf(t->of, sizeof t->of, "%s", infer ? "infer" : "train");
    t->predicted_dense_ms = dnal_latency_predict(r->latency, dense, NULL, which);
    t->predicted_compact_ms = dnal_latency_predict(r->latency, dense, dense->mask, which);
    t->predicted_ratio = t->predicted_compact_ms / t->predicted_dense_ms;
    /* inference: both networks at batch 1 */
    dnal_net *d = dense, *c = compact;
    if (infer) {
        dnal_model_cfg one = r->model;
        one.batch = 1;
        d = dnal_model_build(r->ctx, &one);
        c = dnal_net_compact(dense, 1);
        dnal_net_set_labels(d, r->labels);
    }
    dnal_net_set_labels(c, r->labels);
    double dm[PAIRS], cm[PAIRS], ratio[PAIRS];
    for (int p = 0; p < PAIRS; p++) {
        dm[p] = dnal_time_steps(d, infer, STEPS);
        cm[p] = dnal_time_steps(c, infer, STEPS);
        ratio[p] = cm[p] / dm[p];
    }
    t->dense_ms = median(dm, PAIRS);
    t->compact_ms = median(cm, PAIRS);
    t->ratio = median(ratio, PAIRS);
    if (infer) {
        dnal_net_destroy(d);
        dnal_net_destroy(c);
    }
    report_latency(r);
}
