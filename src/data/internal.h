/* Shared by the dataset implementations (not installed).
 *
 * A dataset is one split held in memory: raw uint8 pixels (C x H x W per
 * sample) and labels for the file formats, nothing for synthetic (its
 * samples are computed on demand). dataset.c does everything that is common:
 * dispatch, the limit, normalisation through a per-channel lookup table, and
 * the crop/flip augmentation. */
#ifndef DNAL_DATA_INTERNAL_H
#define DNAL_DATA_INTERNAL_H

#include <stdint.h>

#include "dnal/core.h"
#include "dnal/data.h"

enum { DATA_MAX_CHANNELS = 3 }; /* of the file formats (the lookup table) */

struct dnal_dataset {
    const char *name;    /* canonical, static */
    dnal_split split;
    int64_t n;           /* samples after the limit */
    int64_t classes;
    int64_t c, h, w;     /* one sample as stored and as served */
    uint64_t seed;

    /* file formats: the whole split, loaded at open */
    uint8_t *pixels;     /* n_loaded x c x h x w */
    uint8_t *labels;     /* n_loaded */
    float norm[DATA_MAX_CHANNELS][256]; /* (byte / 255 - mean[c]) / std[c] */

    /* augmentation: a random crop with `pad` pixels of zero padding, then a
     * horizontal flip with probability 1/2 if `flip`; on only for the train
     * split with cfg->augment */
    int augment, pad, flip;

    /* synthetic */
    float *class_offset; /* classes x c */
    float noise_scale;
};

/* Loaders: fill n, classes, c, h, w, pixels and labels of the whole split,
 * or end the process with exit code 2 naming the file and the problem. */
void data_idx_load(dnal_dataset *d, const char *dir);
void data_cifar_load(dnal_dataset *d, const char *dir);

/* Synthetic: checks and applies the configuration, then computes samples. */
void data_synthetic_init(dnal_dataset *d, const dnal_data_cfg *cfg);
void data_synthetic_get(const dnal_dataset *d, int64_t i, float *chw, int32_t *label);

/* "dir/name" in a fresh allocation (free() it). */
char *data_join(const char *dir, const char *name);

/* splitmix64's finaliser: a bijective mix of 64 bits. */
static inline uint64_t data_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* A hash of three words; chaining the mix keeps (a, b, c) and (b, a, c)
 * apart. Callers put a distinct tag into `a` for each use. */
static inline uint64_t data_hash3(uint64_t a, uint64_t b, uint64_t c)
{
    return data_mix64(data_mix64(data_mix64(a) ^ b) ^ c);
}

/* Tags separating the uses of the hash (arbitrary distinct constants). */
#define DATA_TAG_AUGMENT 0x6175676d656e7431ULL
#define DATA_TAG_ORDER 0x6f72646572303031ULL
#define DATA_TAG_LABEL 0x6c6162656c303031ULL
#define DATA_TAG_PIXELS 0x706978656c303031ULL
#define DATA_TAG_OFFSETS 0x6f66667365743031ULL

#endif
