/* dnal dist: data parallelism over MPI ranks (docs/design.md, "The MPI protocol").
 *
 * One dnal_dist per run. With one rank (or no MPI at all, as in the unit
 * tests) every call is a local no-op or copy, so the trainer runs the same
 * code on one process and on many. Nothing here knows the method: the
 * trainer (src/search) decides what to reduce and when.
 *
 * Weight gradients: the flat gradient buffer is in reverse layer order, so
 * the gradients backward finishes first form a prefix. The trainable layers
 * are cut into contiguous buckets of about dist.bucket_kb; the backward's
 * per-layer callback starts an MPI_Iallreduce as soon as a bucket's last
 * layer is done and tests the outstanding ones between layers (Open MPI
 * progresses non-blocking collectives only inside MPI calls); the update
 * waits for all of them. Buckets start in the same order on every rank. */
#ifndef DNAL_DIST_H
#define DNAL_DIST_H

#include <mpi.h>

#include "dnal/net.h"

typedef struct dnal_bucket {
    size_t off, count;  /* floats of net->grad */
    int ready_layer;    /* complete once backward has done this layer */
} dnal_bucket;

typedef struct dnal_dist {
    MPI_Comm comm;      /* MPI_COMM_NULL: one process, no MPI calls */
    int rank, size;

    /* weight gradients */
    int blocking;       /* one MPI_Allreduce over every bucket after backward */
    size_t bucket_floats;
    int n_buckets, started;
    dnal_bucket *buckets; /* for the layers trainable at the last plan */
    MPI_Request *reqs;    /* one per bucket */
    /* seconds, accumulated since the last dnal_dist_reset_times */
    double t_exposed;   /* inside MPI calls on the step's path (start, test, wait) */
    double t_allreduce; /* blocking mode: the allreduce itself */
} dnal_dist;

/* comm MPI_COMM_NULL: a single process that never calls MPI. */
void dnal_dist_init(dnal_dist *d, MPI_Comm comm, int blocking, int64_t bucket_kb);
void dnal_dist_free(dnal_dist *d);

/* The slice of a global batch this rank takes: ranks take consecutive
 * slices of batch / size; returns 0 if batch does not divide evenly. */
int dnal_dist_shard(int64_t batch, int rank, int size, int64_t *first, int64_t *count);
/* Rank r's part [first, first + count) of n items split as evenly as
 * possible (evaluation). */
void dnal_dist_range(int64_t n, int rank, int size, int64_t *first, int64_t *count);

/* Buckets over the layers of `net` that are not frozen; call whenever the
 * set of frozen layers changes (each stage). */
void dnal_dist_plan(dnal_dist *d, const dnal_net *net);
/* Backward's per-layer callback (dnal_layer_done_fn; arg = the dist). */
void dnal_dist_grad_ready(void *arg, const dnal_net *net, int layer);
/* Waits for every bucket and divides by the number of ranks: net->grad then
 * holds the gradient of the global batch's mean loss on every rank. */
void dnal_dist_grad_finish(dnal_dist *d, dnal_net *net);
void dnal_dist_reset_times(dnal_dist *d);

/* 1 on every rank if flag is set on any rank (MPI_LOR). */
int dnal_dist_any(const dnal_dist *d, int flag);
/* v[0..n) summed over ranks, on every rank. */
void dnal_dist_sum(const dnal_dist *d, double *v, int n);
/* Bitwise OR of n bytes over the ranks, in place. */
void dnal_dist_or_bytes(const dnal_dist *d, uint8_t *v, size_t n);
/* v[0..n) averaged over ranks, on every rank (BN running statistics). */
void dnal_dist_average(const dnal_dist *d, float *v, size_t n);
/* v[0..n) summed over ranks into rank 0's v (others' v unchanged). */
void dnal_dist_reduce_to_root(const dnal_dist *d, float *v, size_t n);
/* Rank 0's bytes to every rank. */
void dnal_dist_bcast(const dnal_dist *d, void *buf, size_t bytes);
/* 1 if every rank passes the same bytes (a 64-bit FNV-1a hash compared by
 * min and max across ranks). */
int dnal_dist_same(const dnal_dist *d, const void *buf, size_t bytes);

#endif
