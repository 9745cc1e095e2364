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

    /* imagenet, imagenet-shards: samples decoded on demand (stream.c) */
    struct data_stream *stream;
};

/* ---- streamed datasets: JPEG decoding and resampling (jpeg.c) ---- */

/* A box in an image's pixel coordinates (x, y: top left corner). */
typedef struct data_box {
    double x, y, w, h;
} data_box;

/* Decoded pixels: h rows of w pixels, `comps` bytes each (RGB), rows
 * `stride` bytes apart, and the crop box in these pixels' coordinates. */
typedef struct data_region {
    const uint8_t *pix;
    int64_t w, h, stride, comps;
    data_box box;
} data_region;

/* Buffers a decoding thread reuses from sample to sample. */
typedef struct data_scratch {
    uint8_t *file, *pix;
    size_t file_cap, pix_cap;
    float *tmp;
    size_t tmp_cap;
    void *taps;
    size_t taps_cap;
    int64_t max_pixels;  /* set by the caller before decoding; 0 = the default */
} data_scratch;
void data_scratch_free(data_scratch *s);
/* p if it holds need bytes, else a fresh buffer of at least need (p freed) */
void *data_grow(void *p, size_t *cap, size_t need);

/* Chooses the crop box once the image's size is known. */
typedef void (*data_box_fn)(void *arg, int64_t w, int64_t h, data_box *box);

/* Decodes what the box chosen by `choose` needs for an out_w x out_h output
 * (DCT downscaling, cropped scanlines); 0, or -1 with the reason in why for
 * a file that is not a JPEG or whose image data is damaged. */
/* A file whose header declares more than s->max_pixels pixels fails
 * before decompression starts; libjpeg's own memory is capped to what an
 * image of that size needs (progressive files buffer every coefficient). */
int data_jpeg_decode(const uint8_t *buf, size_t len, int64_t out_w, int64_t out_h,
                     data_box_fn choose, void *arg, data_scratch *s, data_region *out,
                     char *why, size_t why_len);
/* The region's box resampled (antialiased bilinear) to out_h x out_w:
 * normalised floats, C x H x W, mirrored if flip, value*scale[c]+shift[c]. */
void data_resample_chw(const data_region *r, int64_t out_w, int64_t out_h, int flip,
                       const float *scale, const float *shift, data_scratch *s, float *chw);
/* ... or as bytes, H x W x C (dnal prep). */
void data_resample_hwc8(const data_region *r, int64_t out_w, int64_t out_h, data_scratch *s,
                        uint8_t *hwc);

/* ---- augmentation boxes (stream.c) ---- */

/* torchvision's RandomResizedCrop(scale min_scale..1, ratio 3/4..4/3) box of
 * a w x h image and the horizontal flip, from the 64-bit key of a sample */
void data_random_crop(uint64_t key, int64_t w, int64_t h, double min_scale, data_box *box,
                      int *flip);
/* evaluation: resize the shorter side to size/0.875, center crop size */
void data_center_crop(int64_t w, int64_t h, int64_t size, data_box *box);

/* imagenet and imagenet-shards: open, sample, close (stream.c, shards.c) */
void data_stream_open(dnal_dataset *d, const dnal_data_cfg *cfg, int shards);
void data_stream_close(dnal_dataset *d);
void data_stream_get(const dnal_dataset *d, int64_t epoch, int64_t i, float *chw, int32_t *label,
                     data_scratch *s);
/* The class folders of PATH/train (sorted) and the files of the split's
 * class folders in round-robin order: paths relative to *root (PATH/train
 * or PATH/val), labels; exit 2 naming the folder if it is unusable.
 * Entries that are not regular files are named on stderr, counted in
 * *others and never opened. */
char **data_folder_scan(const char *path, dnal_split split, int64_t *n_classes, char ***paths,
                        int32_t **labels, int64_t *n, char **root, int64_t *others);
/* path opened for reading if it is a regular file (without waiting, were
 * it a FIFO), with its stat; else -1 and errno (EINVAL: not regular) */
struct stat;
int data_open_regular(const char *path, struct stat *sb);

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
#define DATA_TAG_CROP 0x63726f7030303031ULL

#endif
