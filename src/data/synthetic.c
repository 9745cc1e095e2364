/* Synthetic images for benchmarks and tests, computed on demand (nothing is
 * stored per sample, so any size costs no memory).
 *
 * Sample i of a split: label = hash(seed, split, i) mod classes; pixel
 * (c, y, x) = offset[label][c] + noise, the noise a pure function of
 * (seed, split, i, pixel). The offsets depend on the seed only (both splits
 * share them): for each channel the classes sit on evenly spaced levels in
 * [-1, 1], shuffled per channel, so classes are apart on every channel and a
 * network (even a linear one over the channel means) can learn them. Offsets
 * and noise together have about zero mean and unit variance. */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

enum { SYNTH_CHANNELS = 3, SYNTH_SIZE = 32, SYNTH_CLASSES = 10 };
enum { SYNTH_TRAIN_SAMPLES = 1024, SYNTH_TEST_SAMPLES = 256 };

static int64_t positive_or_default(int64_t value, int64_t fallback, const char *key)
{
    if (value < 0)
        dnal_fatal(DNAL_EXIT_USAGE, "%s = %lld must be >= 0 for synthetic (0 = default %lld)", key,
                   (long long)value, (long long)fallback);
    return value ? value : fallback;
}

void data_synthetic_init(dnal_dataset *d, const dnal_data_cfg *cfg)
{
    const int train = d->split == DNAL_SPLIT_TRAIN;
    d->name = "synthetic";
    d->c = positive_or_default(cfg->channels, SYNTH_CHANNELS, "synthetic channels");
    d->h = d->w = positive_or_default(cfg->image_size, SYNTH_SIZE, "data.image_size");
    if (d->h > 4096) /* as imagenet's: checkpoints and model files hold at most that */
        dnal_fatal(DNAL_EXIT_USAGE, "data.image_size = %lld is out of range (1..4096)",
                   (long long)d->h);
    d->classes = positive_or_default(cfg->classes, SYNTH_CLASSES, "synthetic classes");
    d->n = positive_or_default(cfg->samples, train ? SYNTH_TRAIN_SAMPLES : SYNTH_TEST_SAMPLES,
                               "synthetic samples");
    if (d->classes > INT32_MAX)
        dnal_fatal(DNAL_EXIT_USAGE, "synthetic classes = %lld is too many",
                   (long long)d->classes);

    const int64_t k_n = d->classes;
    d->class_offset = dnal_alloc(sizeof *d->class_offset * (size_t)(k_n * d->c));
    int64_t *level = dnal_alloc(sizeof *level * (size_t)k_n);
    double sum_sq = 0.0;
    for (int64_t c = 0; c < d->c; c++) {
        /* Fisher-Yates over the levels, from a splitmix64 stream of (seed, c) */
        uint64_t state = data_hash3(d->seed ^ DATA_TAG_OFFSETS, (uint64_t)c, 0);
        for (int64_t k = 0; k < k_n; k++)
            level[k] = k;
        for (int64_t k = k_n - 1; k > 0; k--) {
            state += 0x9e3779b97f4a7c15ULL;
            int64_t j = (int64_t)(data_mix64(state) % (uint64_t)(k + 1));
            int64_t t = level[k];
            level[k] = level[j];
            level[j] = t;
        }
        for (int64_t k = 0; k < k_n; k++) {
            double offset = 2.0 * (level[k] + 0.5) / (double)k_n - 1.0;
            d->class_offset[k * d->c + c] = (float)offset;
            sum_sq += offset * offset;
        }
    }
    free(level);
    /* the offsets have zero mean per channel; the noise makes up the rest
     * of a unit variance (sqrt(3) turns the variance 1/3 of the sum of four
     * uniforms below into 1) */
    double offset_var = sum_sq / (double)(k_n * d->c);
    d->noise_scale = (float)(sqrt(3.0) * sqrt(fmax(1.0 - offset_var, 0.25)));
}

void data_synthetic_get(const dnal_dataset *d, int64_t i, float *chw, int32_t *label)
{
    const uint64_t key_label = data_hash3(d->seed ^ DATA_TAG_LABEL, (uint64_t)d->split,
                                          (uint64_t)i);
    const int64_t k = (int64_t)(key_label % (uint64_t)d->classes);
    if (label)
        *label = (int32_t)k;
    const uint64_t base = data_hash3(d->seed ^ DATA_TAG_PIXELS, (uint64_t)d->split, (uint64_t)i);
    const int64_t hw = d->h * d->w;
    const float scale = d->noise_scale / 65536.0f;
    for (int64_t c = 0; c < d->c; c++) {
        const float offset = d->class_offset[k * d->c + c];
        float *out = chw + c * hw;
        for (int64_t p = 0; p < hw; p++) {
            /* a splitmix64 stream over the pixels: four 16-bit uniforms
             * summed, centred (mean 2 * 65535), about normal */
            uint64_t r = data_mix64(base + (uint64_t)(c * hw + p) * 0x9e3779b97f4a7c15ULL);
            int32_t s = (int32_t)(r & 0xffff) + (int32_t)((r >> 16) & 0xffff) +
                        (int32_t)((r >> 32) & 0xffff) + (int32_t)(r >> 48) - 2 * 65535;
            out[p] = offset + scale * (float)s;
        }
    }
}
