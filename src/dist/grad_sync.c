/* Weight-gradient averaging in buckets, overlapped with backward
 * (docs/design.md, "The MPI protocol"; see dnal/dist.h). */
#include <stdlib.h>
#include <string.h>

#include "dnal/dist.h"

static int distributed(const dnal_dist *d)
{
    return d->comm != MPI_COMM_NULL && d->size > 1;
}

/* [lo, hi) of a layer's parameters in the flat buffer, padding included:
 * a layer's parameters are adjacent, and layers are in reverse order. */
static void layer_span(const dnal_net *net, int i, size_t *lo, size_t *hi)
{
    const dnal_layer *l = net->layers[i];
    *lo = l->param[0].off;
    *hi = net->n_param; /* up to the next layer's first parameter, or the end */
    for (int j = i - 1; j >= 0; j--)
        if (net->layers[j]->n_params > 0) {
            *hi = net->layers[j]->param[0].off;
            break;
        }
}

void dnal_dist_plan(dnal_dist *d, const dnal_net *net)
{
    dnal_dist_free(d);
    d->buckets = dnal_calloc(sizeof *d->buckets * ((size_t)net->n_layers + 1));
    d->reqs = dnal_calloc(sizeof *d->reqs * ((size_t)net->n_layers + 1));
    dnal_bucket *cur = NULL;
    for (int i = net->n_layers - 1; i >= 0; i--) {
        const dnal_layer *l = net->layers[i];
        if (l->n_params == 0)
            continue;
        if (l->frozen) { /* a gap: the next trainable layer starts a new bucket */
            cur = NULL;
            continue;
        }
        size_t lo, hi;
        layer_span(net, i, &lo, &hi);
        if (!cur || cur->off + cur->count != lo) {
            cur = &d->buckets[d->n_buckets++];
            cur->off = lo;
            cur->count = 0;
        }
        cur->count = hi - cur->off;
        cur->ready_layer = i;
        if (cur->count >= d->bucket_floats)
            cur = NULL;
    }
    for (int b = 0; b < d->n_buckets; b++)
        d->reqs[b] = MPI_REQUEST_NULL;
    d->started = 0;
}

static void start_bucket(dnal_dist *d, const dnal_net *net, int b)
{
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, net->grad + d->buckets[b].off,
                             (int)d->buckets[b].count, MPI_FLOAT, MPI_SUM, d->comm, &d->reqs[b]));
}

void dnal_dist_grad_ready(void *arg, const dnal_net *net, int layer)
{
    dnal_dist *d = arg;
    if (!distributed(d) || d->blocking || d->n_buckets == 0)
        return;
    double t0 = MPI_Wtime();
    while (d->started < d->n_buckets && d->buckets[d->started].ready_layer >= layer)
        start_bucket(d, net, d->started++);
    if (d->started > 0) { /* progress the ones in flight */
        int done;
        MPI_CHECK(MPI_Testall(d->started, d->reqs, &done, MPI_STATUSES_IGNORE));
    }
    d->t_exposed += MPI_Wtime() - t0;
}

void dnal_dist_grad_finish(dnal_dist *d, dnal_net *net)
{
    if (!distributed(d) || d->n_buckets == 0)
        return;
    double t0 = MPI_Wtime();
    if (d->blocking) {
        /* one allreduce per run of adjacent buckets: the gaps between runs
         * (frozen layers) are neither summed nor divided below */
        for (int b = 0; b < d->n_buckets;) {
            size_t off = d->buckets[b].off, end = off + d->buckets[b].count;
            for (b++; b < d->n_buckets && d->buckets[b].off == end; b++)
                end += d->buckets[b].count;
            MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, net->grad + off, (int)(end - off), MPI_FLOAT,
                                    MPI_SUM, d->comm));
        }
        d->t_allreduce += MPI_Wtime() - t0;
    } else {
        while (d->started < d->n_buckets) /* backward ran without the callback */
            start_bucket(d, net, d->started++);
        MPI_CHECK(MPI_Waitall(d->n_buckets, d->reqs, MPI_STATUSES_IGNORE));
    }
    d->started = 0;
    d->t_exposed += MPI_Wtime() - t0;
    float inv = 1.0f / (float)d->size;
    for (int b = 0; b < d->n_buckets; b++) {
        float *g = net->grad + d->buckets[b].off;
        size_t n = d->buckets[b].count;
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++)
            g[i] *= inv;
    }
}

void dnal_dist_reset_times(dnal_dist *d)
{
    d->t_exposed = d->t_allreduce = 0;
}
