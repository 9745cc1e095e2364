/* dnal data: datasets behind one interface, the epoch order and batches.
 *
 * Randomness is a pure function of (seed, epoch, sample index): the samples
 * and augmentations a step sees do not depend on the number of ranks or
 * threads, and a resumed run sees exactly what an uninterrupted one would.
 * Bad input (a missing, truncated or malformed file, a wrong magic number, a
 * label out of range) ends the process with exit code 2 (DNAL_EXIT_DATA) and
 * a message naming the file and the problem; except single images of the
 * streamed datasets (imagenet, imagenet-shards): an image file that cannot
 * be decoded is skipped, named on stderr and counted, and the next good
 * sample serves in its place. */
#ifndef DNAL_DATA_H
#define DNAL_DATA_H

#include <stddef.h>
#include <stdint.h>

typedef enum dnal_split { DNAL_SPLIT_TRAIN = 0, DNAL_SPLIT_TEST = 1 } dnal_split;

typedef struct dnal_data_cfg {
    const char *name;     /* "fashion-mnist", "cifar10", "imagenet" (JPEG folders
                             PATH/train/<class>/, PATH/val/<class>/), "imagenet-shards"
                             (the folder of dnal prep) or "synthetic" */
    const char *path;     /* folder with the files; NULL or "" = the dataset's default */
    int64_t image_size;   /* 0 = the dataset's own (28, 32; imagenet 224); synthetic and
                             imagenet: any side >= 1 */
    int augment;          /* training augmentation on the train split */
    int64_t limit;        /* use only the first N samples of the split; 0 = all */
    uint64_t seed;
    int64_t max_pixels;   /* JPEG folders: larger declared images are skipped; 0 = the default */
    double crop_min_scale; /* imagenet*: the smallest area fraction of a training crop;
                              0 = torchvision's 0.08 */
    /* synthetic only: */
    int64_t channels;     /* default 3 */
    int64_t classes;      /* default 10 */
    int64_t samples;      /* samples per split; default 1024 train, 256 test */
} dnal_data_cfg;

typedef struct dnal_dataset dnal_dataset; /* opaque */

/* data.max_pixels' default: PIL's decompression-bomb limit (about 89.5
 * million pixels, 0.25 GiB as 8-bit RGB at 3 bytes a pixel) */
#define DNAL_DATA_MAX_PIXELS_DEFAULT 89478485

/* Opens one split; exits 2 with a message on bad input. */
dnal_dataset *dnal_dataset_open(const dnal_data_cfg *cfg, dnal_split split);
void dnal_dataset_close(dnal_dataset *d);

int64_t dnal_dataset_size(const dnal_dataset *d);    /* samples (after the limit) */
int64_t dnal_dataset_classes(const dnal_dataset *d);
/* NULL if both splits carry the same class names (datasets without names:
 * the same count), else why not */
const char *dnal_dataset_same_classes(const dnal_dataset *a, const dnal_dataset *b);
/* shape of one sample as the network sees it (after any crop or resize) */
void dnal_dataset_shape(const dnal_dataset *d, int64_t *c, int64_t *h, int64_t *w);
const char *dnal_dataset_name(const dnal_dataset *d);

/* Sample i of the split, normalised per channel, as C x H x W floats, and its
 * label. With augmentation on (train split only) the sample is augmented by
 * a pure function of (seed, epoch, i). Thread-safe. */
void dnal_dataset_get(const dnal_dataset *d, int64_t epoch, int64_t i, float *chw,
                      int32_t *label);

/* Streamed (imagenet, imagenet-shards): samples are read and decoded on
 * demand, not held in memory. */
int dnal_dataset_streamed(const dnal_dataset *d);
/* Image files found unusable so far (by this process, or by others whose
 * flags were merged in). */
int64_t dnal_dataset_skipped(const dnal_dataset *d);
/* The flags behind that count, one byte per sample of the split (1:
 * unusable): copied out, and merged back (an OR) so that every rank skips
 * what any rank found. Safe while decoding threads run. */
void dnal_dataset_skip_flags(const dnal_dataset *d, uint8_t *out);
void dnal_dataset_merge_skip_flags(dnal_dataset *d, const uint8_t *in);

/* The order of epoch `epoch`: a permutation of 0..n-1 from (seed, epoch),
 * identical on every rank (GSL's MT19937 and gsl_ran_shuffle). */
void dnal_epoch_order(uint64_t seed, int64_t epoch, int64_t n, int64_t *order);

/* Fills count samples: images (count x C x H x W, NCHW) and labels, sample k
 * being order[first + k] (order NULL: first + k, for evaluation). Parallel
 * over samples (OpenMP). */
void dnal_batch_fill(const dnal_dataset *d, const int64_t *order, int64_t epoch, int64_t first,
                     int64_t count, float *images, int32_t *labels);

/* A pool of `workers` threads decoding batches ahead of the step, through a
 * bounded queue of `depth` batches of up to `rows` samples. push hands over
 * the sample indices of the next batch (waits while the queue is full); pop
 * waits for the oldest pushed batch and copies it out (NCHW images, labels),
 * returning its row count. Same samples and augmentation as dnal_batch_fill. */
typedef struct dnal_loader dnal_loader;
dnal_loader *dnal_loader_open(const dnal_dataset *d, int workers, int depth, int64_t rows);
void dnal_loader_push(dnal_loader *l, int64_t epoch, const int64_t *index, int64_t count);
int64_t dnal_loader_pop(dnal_loader *l, float *images, int32_t *labels);
/* seconds the workers spent decoding, summed over them */
double dnal_loader_busy_seconds(dnal_loader *l);
void dnal_loader_close(dnal_loader *l);

/* dnal prep imagenet: SRC/<split>/<class>/ files packed into OUT/<split>-NNNNN.dnshard,
 * per_shard images each (shorter side `size`, the longer at most 4/3 of it,
 * centered); this process writes shards rank, rank + nranks, ... Files that
 * cannot be decoded are named on stderr and in OUT/<split>-NNNNN.skipped. */
typedef struct dnal_prep_stats {
    int64_t images, skipped, shards; /* images and skipped: of this process's shards */
} dnal_prep_stats;
dnal_prep_stats dnal_prep_imagenet(const char *src, const char *out, const char *split,
                                   int64_t size, int64_t per_shard, int rank, int nranks,
                                   int64_t max_pixels);

#endif
