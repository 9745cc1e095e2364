/* The dist handle, sharding arithmetic and the small collectives of a run:
 * sums, averages, reduction to rank 0, broadcast, replica comparison. Each
 * is a no-op (or the identity) on a single process. */
#include <stdlib.h>
#include <string.h>

#include "dnal/dist.h"

static int distributed(const dnal_dist *d)
{
    return d->comm != MPI_COMM_NULL && d->size > 1;
}

void dnal_dist_init(dnal_dist *d, MPI_Comm comm, int blocking, int64_t bucket_kb)
{
    memset(d, 0, sizeof *d);
    d->comm = comm;
    d->size = 1;
    if (comm != MPI_COMM_NULL) {
        MPI_CHECK(MPI_Comm_rank(comm, &d->rank));
        MPI_CHECK(MPI_Comm_size(comm, &d->size));
    }
    d->blocking = blocking;
    d->bucket_floats = (size_t)(bucket_kb > 0 ? bucket_kb : 1) * 1024 / sizeof(float);
}

void dnal_dist_free(dnal_dist *d)
{
    free(d->buckets);
    free(d->reqs);
    d->buckets = NULL;
    d->reqs = NULL;
    d->n_buckets = 0;
}

int dnal_dist_shard(int64_t batch, int rank, int size, int64_t *first, int64_t *count)
{
    if (size < 1 || batch % size != 0)
        return 0;
    *count = batch / size;
    *first = (int64_t)rank * *count;
    return 1;
}

void dnal_dist_range(int64_t n, int rank, int size, int64_t *first, int64_t *count)
{
    *first = n * rank / size;
    *count = n * (rank + 1) / size - *first;
}

int dnal_dist_any(const dnal_dist *d, int flag)
{
    if (distributed(d))
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &flag, 1, MPI_INT, MPI_LOR, d->comm));
    return flag != 0;
}

void dnal_dist_or_bytes(const dnal_dist *d, uint8_t *v, size_t n)
{
    if (distributed(d) && n > 0)
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, v, (int)n, MPI_UINT8_T, MPI_BOR, d->comm));
}

void dnal_dist_sum(const dnal_dist *d, double *v, int n)
{
    if (distributed(d))
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, d->comm));
}

void dnal_dist_average(const dnal_dist *d, float *v, size_t n)
{
    if (!distributed(d) || n == 0)
        return;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, v, (int)n, MPI_FLOAT, MPI_SUM, d->comm));
    float inv = 1.0f / (float)d->size;
    for (size_t i = 0; i < n; i++)
        v[i] *= inv;
}

void dnal_dist_reduce_to_root(const dnal_dist *d, float *v, size_t n)
{
    if (!distributed(d) || n == 0)
        return;
    if (d->rank == 0)
        MPI_CHECK(MPI_Reduce(MPI_IN_PLACE, v, (int)n, MPI_FLOAT, MPI_SUM, 0, d->comm));
    else
        MPI_CHECK(MPI_Reduce(v, NULL, (int)n, MPI_FLOAT, MPI_SUM, 0, d->comm));
}

void dnal_dist_bcast(const dnal_dist *d, void *buf, size_t bytes)
{
    if (distributed(d) && bytes > 0)
        MPI_CHECK(MPI_Bcast(buf, (int)bytes, MPI_BYTE, 0, d->comm));
}

int dnal_dist_same(const dnal_dist *d, const void *buf, size_t bytes)
{
    if (!distributed(d))
        return 1;
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    const unsigned char *p = buf;
    for (size_t i = 0; i < bytes; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    uint64_t v[2] = {h, ~h}; /* max of ~h is ~(min of h) */
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_UINT64_T, MPI_MAX, d->comm));
    return v[0] == ~v[1];
}
