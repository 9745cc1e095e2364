/* dnal data: datasets behind one interface, the epoch order and batches.
 *
 * Randomness is a pure function of (seed, epoch, sample index): the samples
 * and augmentations a step sees do not depend on the number of ranks or
 * threads, and a resumed run sees exactly what an uninterrupted one would.
 * Bad input (a missing, truncated or malformed file, a wrong magic number, a
 * label out of range) ends the process with exit code 2 (DNAL_EXIT_DATA) and
 * a message naming the file and the problem. */
#ifndef DNAL_DATA_H
#define DNAL_DATA_H

#include <stddef.h>
#include <stdint.h>

typedef enum dnal_split { DNAL_SPLIT_TRAIN = 0, DNAL_SPLIT_TEST = 1 } dnal_split;

typedef struct dnal_data_cfg {
    const char *name;     /* "fashion-mnist", "cifar10" or "synthetic" */
    const char *path;     /* folder with the files; NULL or "" = the dataset's default */
    int64_t image_size;   /* 0 = the dataset's own (28, 32); synthetic: any side >= 1 */
    int augment;          /* training augmentation on the train split */
    int64_t limit;        /* use only the first N samples of the split; 0 = all */
    uint64_t seed;
    /* synthetic only: */
    int64_t channels;     /* default 3 */
    int64_t classes;      /* default 10 */
    int64_t samples;      /* samples per split; default 1024 train, 256 test */
} dnal_data_cfg;

typedef struct dnal_dataset dnal_dataset; /* opaque */

/* Opens one split; exits 2 with a message on bad input. */
dnal_dataset *dnal_dataset_open(const dnal_data_cfg *cfg, dnal_split split);
void dnal_dataset_close(dnal_dataset *d);

int64_t dnal_dataset_size(const dnal_dataset *d);    /* samples (after the limit) */
int64_t dnal_dataset_classes(const dnal_dataset *d);
/* shape of one sample as the network sees it (after any crop or resize) */
void dnal_dataset_shape(const dnal_dataset *d, int64_t *c, int64_t *h, int64_t *w);
const char *dnal_dataset_name(const dnal_dataset *d);

/* Sample i of the split, normalised per channel, as C x H x W floats, and its
 * label. With augmentation on (train split only) the sample is augmented by
 * a pure function of (seed, epoch, i). Thread-safe. */
void dnal_dataset_get(const dnal_dataset *d, int64_t epoch, int64_t i, float *chw,
                      int32_t *label);

/* The order of epoch `epoch`: a permutation of 0..n-1 from (seed, epoch),
 * identical on every rank (GSL's MT19937 and gsl_ran_shuffle). */
void dnal_epoch_order(uint64_t seed, int64_t epoch, int64_t n, int64_t *order);

/* Fills count samples: images (count x C x H x W, NCHW) and labels, sample k
 * being order[first + k] (order NULL: first + k, for evaluation). Parallel
 * over samples (OpenMP). */
void dnal_batch_fill(const dnal_dataset *d, const int64_t *order, int64_t epoch, int64_t first,
                     int64_t count, float *images, int32_t *labels);

#endif
