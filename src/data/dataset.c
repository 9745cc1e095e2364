/* Datasets behind one interface: open/close, normalisation, augmentation,
 * the epoch order and batches (include/dnal/data.h).
 *
 * The file formats keep raw bytes; a sample is normalised on the way out
 * through a 256-entry table per channel, so a sample costs one table lookup
 * per pixel and nothing is allocated per sample. Augmentation follows
 * torchvision's RandomCrop(size, padding=4) (+ RandomHorizontalFlip) and
 * then Normalize: the padding is raw 0, normalised like any other pixel. */
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "internal.h"

#define FASHION_MNIST_DEFAULT_PATH "/usr/share/datasets/fashion-mnist"
#define CIFAR10_DEFAULT_PATH "cifar-10-batches-bin"

typedef struct file_format {
    const char *name;
    const char *default_path;
    int64_t native_size;
    int64_t channels;
    double mean[DATA_MAX_CHANNELS], std[DATA_MAX_CHANNELS];
    int pad, flip;
    void (*load)(dnal_dataset *d, const char *dir);
} file_format;

static const file_format formats[] = {
    {"fashion-mnist", FASHION_MNIST_DEFAULT_PATH, 28, 1, {0.2860}, {0.3530}, 4, 0,
     data_idx_load},
    {"cifar10", CIFAR10_DEFAULT_PATH, 32, 3, {0.4914, 0.4822, 0.4465}, {0.2470, 0.2435, 0.2616},
     4, 1, data_cifar_load},
};

char *data_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *s = dnal_alloc(a + b + 2);
    memcpy(s, dir, a);
    s[a] = '/';
    memcpy(s + a + 1, name, b + 1);
    return s;
}

static void open_file_format(dnal_dataset *d, const file_format *f, const dnal_data_cfg *cfg)
{
    if (cfg->image_size != 0 && cfg->image_size != f->native_size)
        dnal_fatal(DNAL_EXIT_USAGE,
                   "data.image_size = %lld is not supported for %s (0 or %lld: no resizing)",
                   (long long)cfg->image_size, f->name, (long long)f->native_size);
    d->name = f->name;
    d->pad = f->pad;
    d->flip = f->flip;
    f->load(d, cfg->path && cfg->path[0] ? cfg->path : f->default_path);
    DNAL_ASSERT(d->c == f->channels);
    for (int64_t c = 0; c < d->c; c++)
        for (int v = 0; v < 256; v++)
            d->norm[c][v] = (float)((v / 255.0 - f->mean[c]) / f->std[c]);
}

dnal_dataset *dnal_dataset_open(const dnal_data_cfg *cfg, dnal_split split)
{
    DNAL_ASSERT(cfg && (split == DNAL_SPLIT_TRAIN || split == DNAL_SPLIT_TEST));
    const char *name = cfg->name ? cfg->name : "";
    if (cfg->limit < 0)
        dnal_fatal(DNAL_EXIT_USAGE, "data limit = %lld must be >= 0 (0 = all samples)",
                   (long long)cfg->limit);
    dnal_dataset *d = dnal_calloc(sizeof *d);
    d->split = split;
    d->seed = cfg->seed;

    const file_format *f = NULL;
    for (size_t k = 0; k < sizeof formats / sizeof formats[0]; k++)
        if (!strcmp(name, formats[k].name))
            f = &formats[k];
    if (f)
        open_file_format(d, f, cfg);
    else if (!strcmp(name, "synthetic"))
        data_synthetic_init(d, cfg);
    else if (!strcmp(name, "imagenet") || !strcmp(name, "imagenet-shards"))
        data_stream_open(d, cfg, !strcmp(name, "imagenet-shards"));
    else
        dnal_fatal(DNAL_EXIT_USAGE,
                   "data.dataset = '%s' is not a known dataset (fashion-mnist, cifar10, "
                   "imagenet, imagenet-shards, synthetic)",
                   name);

    if (cfg->limit > 0 && cfg->limit < d->n)
        d->n = cfg->limit;
    if (!d->stream)
        d->augment = cfg->augment && split == DNAL_SPLIT_TRAIN && (d->pad > 0 || d->flip);
    return d;
}

void dnal_dataset_close(dnal_dataset *d)
{
    if (!d)
        return;
    data_stream_close(d);
    free(d->pixels);
    free(d->labels);
    free(d->class_offset);
    free(d);
}

int64_t dnal_dataset_size(const dnal_dataset *d) { return d->n; }
int64_t dnal_dataset_classes(const dnal_dataset *d) { return d->classes; }
const char *dnal_dataset_name(const dnal_dataset *d) { return d->name; }
int dnal_dataset_streamed(const dnal_dataset *d) { return d->stream != NULL; }

void dnal_dataset_shape(const dnal_dataset *d, int64_t *c, int64_t *h, int64_t *w)
{
    if (c) *c = d->c;
    if (h) *h = d->h;
    if (w) *w = d->w;
}

/* Crop offsets (dy, dx) in [-pad, pad] and the flip: output pixel (y, x)
 * reads raw pixel (y + dy, x' + dx), x' = x or w-1-x when flipped (the crop
 * is taken first, then flipped, as in torchvision's usual pipeline). */
static void augmented(const dnal_dataset *d, const uint8_t *raw, int64_t epoch, int64_t i,
                      float *chw)
{
    const uint64_t r = data_hash3(d->seed ^ DATA_TAG_AUGMENT, (uint64_t)epoch, (uint64_t)i);
    const int64_t span = 2 * d->pad + 1;
    const int64_t dy = (int64_t)((r & 0xffff) % (uint64_t)span) - d->pad;
    const int64_t dx = (int64_t)(((r >> 16) & 0xffff) % (uint64_t)span) - d->pad;
    const int flip = d->flip && ((r >> 32) & 1);
    const int64_t h = d->h, w = d->w, hw = h * w;
    for (int64_t c = 0; c < d->c; c++) {
        const float *norm = d->norm[c];
        const float zero = norm[0];
        for (int64_t y = 0; y < h; y++) {
            float *out = chw + c * hw + y * w;
            const int64_t sy = y + dy;
            if (sy < 0 || sy >= h) {
                for (int64_t x = 0; x < w; x++)
                    out[x] = zero;
                continue;
            }
            const uint8_t *row = raw + c * hw + sy * w;
            for (int64_t x = 0; x < w; x++) {
                const int64_t sx = (flip ? w - 1 - x : x) + dx;
                out[x] = sx >= 0 && sx < w ? norm[row[sx]] : zero;
            }
        }
    }
}

void dnal_dataset_get(const dnal_dataset *d, int64_t epoch, int64_t i, float *chw,
                      int32_t *label)
{
    DNAL_ASSERT(i >= 0 && i < d->n);
    if (d->stream) { /* decoding buffers for this one sample */
        data_scratch s = {0};
        data_stream_get(d, epoch, i, chw, label, &s);
        data_scratch_free(&s);
        return;
    }
    if (!d->pixels) {
        data_synthetic_get(d, i, chw, label);
        return;
    }
    const int64_t hw = d->h * d->w;
    const uint8_t *raw = d->pixels + i * d->c * hw;
    if (label)
        *label = d->labels[i];
    if (d->augment) {
        augmented(d, raw, epoch, i, chw);
        return;
    }
    for (int64_t c = 0; c < d->c; c++) {
        const float *norm = d->norm[c];
        for (int64_t p = 0; p < hw; p++)
            chw[c * hw + p] = norm[raw[c * hw + p]];
    }
}

void dnal_epoch_order(uint64_t seed, int64_t epoch, int64_t n, int64_t *order)
{
    for (int64_t k = 0; k < n; k++)
        order[k] = k;
    if (n < 2)
        return;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    DNAL_ASSERT(rng);
    /* MT19937 takes an unsigned long seed (the low 32 bits matter) */
    gsl_rng_set(rng, (unsigned long)data_hash3(seed ^ DATA_TAG_ORDER, (uint64_t)epoch, 0));
    gsl_ran_shuffle(rng, order, (size_t)n, sizeof *order);
    gsl_rng_free(rng);
}

void dnal_batch_fill(const dnal_dataset *d, const int64_t *order, int64_t epoch, int64_t first,
                     int64_t count, float *images, int32_t *labels)
{
    const int64_t sample = d->c * d->h * d->w;
    if (d->stream) { /* decoded here, one set of buffers per thread */
#pragma omp parallel
        {
            data_scratch s = {0};
#pragma omp for schedule(dynamic, 1)
            for (int64_t k = 0; k < count; k++) {
                const int64_t i = order ? order[first + k] : first + k;
                data_stream_get(d, epoch, i, images + k * sample, labels ? labels + k : NULL, &s);
            }
            data_scratch_free(&s);
        }
        return;
    }
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < count; k++) {
        const int64_t i = order ? order[first + k] : first + k;
        dnal_dataset_get(d, epoch, i, images + k * sample, labels ? labels + k : NULL);
    }
}
