/* Batches decoded ahead of the step by a pool of threads (data.workers),
 * through a bounded queue of `depth` batch slots.
 *
 * The trainer pushes the sample indices of future batches (it knows the
 * epoch order) and pops them in the same order; a push waits while every
 * slot is taken. Workers take single samples of the oldest unfinished
 * batch, so all of them help with the batch the step will need next. The
 * samples, their augmentation and any skipped files are those of
 * dnal_batch_fill: only the time they are decoded changes. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

typedef struct slot {
    int64_t epoch, count, next, done;
    int64_t *index;
    float *images;
    int32_t *labels;
} slot;

struct dnal_loader {
    const dnal_dataset *d;
    int workers, depth;
    int64_t rows, sample;
    slot *slots;
    int head, used; /* oldest slot, slots in use */
    int stop;
    pthread_mutex_t mu;
    pthread_cond_t work, ready, space;
    pthread_t *threads;
    double busy_s;  /* summed over workers: time spent decoding */
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void *worker(void *arg)
{
    dnal_loader *l = arg;
    data_scratch s = {0};
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        slot *job = NULL;
        for (int q = 0; q < l->used && !job; q++) {
            slot *c = &l->slots[(l->head + q) % l->depth];
            if (c->next < c->count)
                job = c;
        }
        if (!job) {
            pthread_cond_wait(&l->work, &l->mu);
            continue;
        }
        int64_t k = job->next++;
        pthread_mutex_unlock(&l->mu);
        double t0 = now_s();
        if (l->d->stream)
            data_stream_get(l->d, job->epoch, job->index[k], job->images + k * l->sample,
                            job->labels + k, &s);
        else
            dnal_dataset_get(l->d, job->epoch, job->index[k], job->images + k * l->sample,
                             job->labels + k);
        double t1 = now_s();
        pthread_mutex_lock(&l->mu);
        l->busy_s += t1 - t0;
        if (++job->done == job->count)
            pthread_cond_broadcast(&l->ready);
    }
    pthread_mutex_unlock(&l->mu);
    data_scratch_free(&s);
    return NULL;
}

dnal_loader *dnal_loader_open(const dnal_dataset *d, int workers, int depth, int64_t rows)
{
    DNAL_ASSERT(workers >= 1 && depth >= 1 && rows >= 1);
    dnal_loader *l = dnal_calloc(sizeof *l);
    l->d = d;
    l->workers = workers;
    l->depth = depth;
    l->rows = rows;
    l->sample = d->c * d->h * d->w;
    l->slots = dnal_calloc(sizeof *l->slots * (size_t)depth);
    l->threads = dnal_calloc(sizeof *l->threads * (size_t)workers);
    for (int q = 0; q < depth; q++) {
        slot *c = &l->slots[q];
        c->index = dnal_alloc(sizeof *c->index * (size_t)rows);
        c->images = dnal_alloc(sizeof *c->images * (size_t)(rows * l->sample));
        c->labels = dnal_alloc(sizeof *c->labels * (size_t)rows);
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->work, NULL);
    pthread_cond_init(&l->ready, NULL);
    pthread_cond_init(&l->space, NULL);
    for (int w = 0; w < workers; w++)
        if (pthread_create(&l->threads[w], NULL, worker, l))
            dnal_fatal(DNAL_EXIT_USAGE, "data.workers: cannot start decoding thread %d", w);
    return l;
}

void dnal_loader_push(dnal_loader *l, int64_t epoch, const int64_t *index, int64_t count)
{
    DNAL_ASSERT(count >= 1 && count <= l->rows);
    pthread_mutex_lock(&l->mu);
    while (l->used == l->depth)
        pthread_cond_wait(&l->space, &l->mu);
    slot *c = &l->slots[(l->head + l->used) % l->depth];
    c->epoch = epoch;
    c->count = count;
    c->next = c->done = 0;
    memcpy(c->index, index, sizeof *index * (size_t)count);
    l->used++;
    pthread_cond_broadcast(&l->work);
    pthread_mutex_unlock(&l->mu);
}

int64_t dnal_loader_pop(dnal_loader *l, float *images, int32_t *labels)
{
    pthread_mutex_lock(&l->mu);
    DNAL_ASSERT(l->used > 0);
    slot *c = &l->slots[l->head];
    while (c->done < c->count)
        pthread_cond_wait(&l->ready, &l->mu);
    pthread_mutex_unlock(&l->mu);
    /* the slot stays ours until it is released below */
    memcpy(images, c->images, sizeof *images * (size_t)(c->count * l->sample));
    memcpy(labels, c->labels, sizeof *labels * (size_t)c->count);
    int64_t count = c->count;
    pthread_mutex_lock(&l->mu);
    l->head = (l->head + 1) % l->depth;
    l->used--;
    pthread_cond_signal(&l->space);
    pthread_mutex_unlock(&l->mu);
    return count;
}

double dnal_loader_busy_seconds(dnal_loader *l)
{
    pthread_mutex_lock(&l->mu);
    double b = l->busy_s;
    pthread_mutex_unlock(&l->mu);
    return b;
}

void dnal_loader_close(dnal_loader *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->work);
    pthread_mutex_unlock(&l->mu);
    for (int w = 0; w < l->workers; w++)
        pthread_join(l->threads[w], NULL);
    for (int q = 0; q < l->depth; q++) {
        free(l->slots[q].index);
        free(l->slots[q].images);
        free(l->slots[q].labels);
    }
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->work);
    pthread_cond_destroy(&l->ready);
    pthread_cond_destroy(&l->space);
    free(l->slots);
    free(l->threads);
    free(l);
}
