/* src/dist under mpirun -np 2 (tests/mpi/test_dist.sh starts it): sharding
 * arithmetic, the bucket plan, bucketed and blocking gradient averaging
 * against a plain allreduce of the same backward, the small collectives,
 * and replica comparison. A check passes only if it passes on every rank;
 * rank 0 prints the TAP lines. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "dnal/dist.h"
#include "dnal/models.h"
#include "../unit/tap.h"

static int rank, size;

static int all(int ok)
{
    MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return ok;
}

static void test_shard(void)
{
    int64_t first, count, ok = 1;
    ok &= dnal_dist_shard(128, 1, 2, &first, &count) && first == 64 && count == 64;
    ok &= dnal_dist_shard(96, 2, 3, &first, &count) && first == 64 && count == 32;
    tap_ok(all((int)ok), "shard: rank r takes [r B/n, (r+1) B/n) of a global batch B");
    tap_ok(all(!dnal_dist_shard(130, 0, 4, &first, &count)), "shard: 130 over 4 ranks is refused");
    int64_t end = 0;
    ok = 1;
    for (int r = 0; r < 3; r++) {
        dnal_dist_range(10, r, 3, &first, &count);
        ok &= first == end && (count == 3 || count == 4);
        end = first + count;
    }
    tap_ok(all((int)(ok && end == 10)), "range: 10 evaluation samples over 3 ranks: 3, 3, 4, in order");
}

/* buckets tile the trainable layers' gradients, ready layers descending */
static int plan_ok(const dnal_dist *d, const dnal_net *net, size_t lo, size_t hi)
{
    size_t next = lo;
    int last = net->n_layers;
    for (int b = 0; b < d->n_buckets; b++) {
        const dnal_bucket *k = &d->buckets[b];
        if (k->off != next || k->count == 0 || k->ready_layer >= last)
            return 0;
        next = k->off + k->count;
        last = k->ready_layer;
    }
    return next == hi;
}

static void test_plan(dnal_net *net)
{
    dnal_dist d;
    dnal_dist_init(&d, MPI_COMM_WORLD, 0, 1);
    dnal_dist_plan(&d, net);
    tap_ok(all(d.n_buckets > 3 && plan_ok(&d, net, 0, net->n_param)),
           "plan: %d buckets of ~1 KB tile every gradient in backward order", d.n_buckets);
    for (int i = 0; i < net->n_layers; i++)
        net->layers[i]->frozen = net->layers[i]->kind != DNAL_LINEAR;
    dnal_dist_plan(&d, net);
    const dnal_layer *fc = dnal_net_find(net, "fc");
    tap_ok(all(d.n_buckets == 1 && d.buckets[0].off == 0 &&
               d.buckets[0].count >= fc->param[1].off + fc->param[1].count &&
               d.buckets[0].count < fc->param[1].off + fc->param[1].count + 16),
           "plan: only the classifier trains: one bucket over its parameters");
    for (int i = 0; i < net->n_layers; i++)
        net->layers[i]->frozen = 0;
    dnal_dist_init(&d, MPI_COMM_WORLD, 0, 1 << 20);
    dnal_dist_plan(&d, net);
    tap_ok(all(d.n_buckets == 1 && plan_ok(&d, net, 0, net->n_param)),
           "plan: a bucket larger than the network: one bucket");
    dnal_dist_free(&d);
}

/* forward and backward on this rank's images */
static void step(dnal_net *net, dnal_dist *d)
{
    dnal_pass p = {.training = 1, .gate_mode = DNAL_GATE_SEARCH, .beta = 2};
    dnal_net_forward(net, &p);
    dnal_net_backward(net, &p, d ? dnal_dist_grad_ready : NULL, d);
    if (d)
        dnal_dist_grad_finish(d, net);
}

static void test_average(dnal_net *net, int blocking)
{
    float *x = dnal_tensor_data(net->input);
    for (size_t i = 0; i < dnal_tensor_count(net->input); i++)
        x[i] = (float)sin(0.37 * (double)i + 1.3 * rank);
    step(net, NULL);
    float *want = malloc(sizeof(float) * net->n_param);
    memcpy(want, net->grad, sizeof(float) * net->n_param);
    MPI_Allreduce(MPI_IN_PLACE, want, (int)net->n_param, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    for (size_t i = 0; i < net->n_param; i++)
        want[i] /= (float)size;
    dnal_dist d;
    dnal_dist_init(&d, MPI_COMM_WORLD, blocking, 1);
    dnal_dist_plan(&d, net);
    step(net, &d);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < net->n_param; i++) {
        worst = fmax(worst, fabs(net->grad[i] - want[i]));
        scale = fmax(scale, fabs(want[i]));
    }
    float spread = net->grad[net->n_param / 2]; /* the same on every rank */
    float lo = spread, hi = spread;
    MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_FLOAT, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_FLOAT, MPI_MAX, MPI_COMM_WORLD);
    tap_ok(all(worst <= 1e-6 * scale && lo == hi && scale > 0),
           "%s: %d buckets average the gradients of a real backward (max diff %.2g of %.2g)",
           blocking ? "blocking" : "bucketed, overlapped", d.n_buckets, worst, scale);
    dnal_dist_free(&d);
    free(want);
}

/* A frozen layer between two trainable ones leaves a gap between buckets:
 * both modes average exactly the buckets and leave the gap as it was
 * (blocking mode once summed the gap every step and never divided it). */
static void test_gap(dnal_net *net, int blocking)
{
    int mid = -1;
    for (int i = net->n_layers / 2; i < net->n_layers && mid < 0; i++)
        if (net->layers[i]->kind == DNAL_BN)
            mid = i;
    net->layers[mid]->frozen = 1;
    const dnal_layer *l = net->layers[mid];
    size_t lo = l->param[0].off, hi = l->param[l->n_params - 1].off + l->param[l->n_params - 1].count;
    dnal_dist d;
    dnal_dist_init(&d, MPI_COMM_WORLD, blocking, 1);
    dnal_dist_plan(&d, net);
    for (size_t i = 0; i < net->n_param; i++)
        net->grad[i] = 1.0f + (float)rank;
    for (int rep = 0; rep < 3; rep++) /* three steps: nothing may accumulate */
        dnal_dist_grad_finish(&d, net);
    float mean = 1.0f + (float)(size - 1) / 2.0f;
    int gap_ok = 1, rest_ok = 1;
    for (size_t i = 0; i < net->n_param; i++) {
        int in_gap = i >= lo && i < hi;
        int in_bucket = 0;
        for (int b = 0; b < d.n_buckets; b++)
            in_bucket |= i >= d.buckets[b].off && i < d.buckets[b].off + d.buckets[b].count;
        if (in_gap)
            gap_ok &= !in_bucket && net->grad[i] == 1.0f + (float)rank;
        else if (in_bucket)
            rest_ok &= fabsf(net->grad[i] - mean) < 1e-6f;
    }
    tap_ok(all(gap_ok && rest_ok && hi > lo),
           "%s: a frozen %s between trainable layers: its gradients untouched, the buckets "
           "averaged, three steps in a row", blocking ? "blocking" : "bucketed", l->name);
    net->layers[mid]->frozen = 0;
    dnal_dist_free(&d);
}

static void test_collectives(void)
{
    dnal_dist d;
    dnal_dist_init(&d, MPI_COMM_WORLD, 0, 512);
    double s[2] = {1.0 + rank, 10.0};
    dnal_dist_sum(&d, s, 2);
    tap_ok(all(s[0] == size * (size + 1) / 2.0 && s[1] == 10.0 * size), "sum of doubles over ranks");
    float v[3] = {(float)rank, 2.0f * (float)rank, 1.0f};
    dnal_dist_average(&d, v, 3);
    tap_ok(all(fabsf(v[0] - (float)(size - 1) / 2) < 1e-6f && v[2] == 1.0f), "average of floats");
    float g[2] = {1.0f + (float)rank, 1.0f};
    dnal_dist_reduce_to_root(&d, g, 2);
    tap_ok(all(rank != 0 || (g[0] == size * (size + 1) / 2.0f && g[1] == (float)size)),
           "reduce to rank 0");
    char msg[16];
    snprintf(msg, sizeof msg, "from rank %d", rank);
    dnal_dist_bcast(&d, msg, sizeof msg);
    tap_ok(all(!strcmp(msg, "from rank 0")), "broadcast of rank 0's bytes");
    float alpha[64];
    for (int i = 0; i < 64; i++)
        alpha[i] = (float)i * 0.25f;
    tap_ok(all(dnal_dist_same(&d, alpha, sizeof alpha)), "same: identical replicas agree");
    if (rank == size - 1)
        alpha[17] = nextafterf(alpha[17], 100.0f);
    tap_ok(all(!dnal_dist_same(&d, alpha, sizeof alpha)), "same: one ulp on one rank is caught");
    dnal_dist local;
    dnal_dist_init(&local, MPI_COMM_NULL, 0, 512);
    float one = 5.0f;
    dnal_dist_average(&local, &one, 1);
    tap_ok(all(local.size == 1 && one == 5.0f && dnal_dist_same(&local, alpha, sizeof alpha)),
           "MPI_COMM_NULL: one process, identity");
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (rank != 0 && !freopen("/dev/null", "w", stdout))
        return 1;
    tap_ok(all(size >= 2), "running on %d ranks", size);
    test_shard();
    dnal_ctx *ctx = dnal_ctx_create();
    dnal_model_cfg m = {.name = "resnet20", .batch = 4, .in_channels = 3, .image_size = 8,
                        .classes = 10, .width = 0.5};
    dnal_net *net = dnal_model_build(ctx, &m);
    dnal_model_init(net, 7);
    int32_t labels[4] = {1, 3, 5, 7};
    dnal_net_set_labels(net, labels);
    test_plan(net);
    test_average(net, 0);
    test_average(net, 1);
    test_gap(net, 0);
    test_gap(net, 1);
    test_collectives();
    dnal_net_destroy(net);
    dnal_ctx_destroy(ctx);
    int rc = tap_done();
    MPI_Finalize();
    return rc;
}
