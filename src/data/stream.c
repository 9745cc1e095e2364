/* Streamed datasets: ImageNet as JPEG folders (`imagenet`: PATH/train/<class>/,
 * PATH/val/<class>/) or as the shards of `dnal prep` (`imagenet-shards`).
 * Samples are read and decoded when asked for, so each rank touches only
 * its own samples.
 *
 * Order: sample k of a split goes round robin over the classes (the k-th
 * class's j-th file, file names sorted), so data.train_limit takes every
 * class and the folders and their shards number samples alike.
 *
 * A file that cannot be read or decoded is skipped: the first time a rank
 * meets it, it names the file on stderr and counts it; its sample is served
 * by the next good one (i+1, i+2, ... of the split), a choice that depends
 * on the files only, not on ranks or threads. Training: random-resized-crop
 * and a horizontal flip (torchvision's defaults); evaluation: shorter side
 * to size/0.875, center crop; both then ImageNet's normalisation. */
#define _DEFAULT_SOURCE /* DT_DIR */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "shards.h"

static const double imagenet_mean[3] = {0.485, 0.456, 0.406};
static const double imagenet_std[3] = {0.229, 0.224, 0.225};

typedef struct shard_file {
    int fd;
    char *name;
} shard_file;

typedef struct shard_sample {
    uint64_t offset;       /* of its pixels (h x w x 3 bytes) in its file */
    int32_t file;
    uint16_t h, w;
} shard_sample;

typedef struct data_stream {
    int shards;
    int64_t n_all;         /* samples found (before data.*_limit) */
    char *root;            /* folders: PATH/train or PATH/val */
    char **path;           /* folders: per sample, relative to root */
    int32_t *label;        /* per sample */
    char **class_name;
    /* shards */
    int n_files;
    shard_file *files;
    shard_sample *sample;  /* per sample: where its pixels are */
    /* normalisation of bytes: v * scale + shift */
    float scale[3], shift[3];
    int64_t others;        /* entries skipped at the scan: not regular files */
    int64_t max_pixels;    /* data.max_pixels */
    double crop_min_scale; /* data.crop_min_scale */
    /* files met that could not be used (one flag per sample) */
    uint8_t *bad;
    pthread_mutex_t report;
} data_stream;

/* ------------------------------------------------------------ boxes */

static double unit(uint64_t *state) /* uniform in [0, 1) */
{
    *state = data_mix64(*state);
    return (double)(*state >> 11) * 0x1.0p-53;
}

void data_random_crop(uint64_t key, int64_t w, int64_t h, double min_scale, data_box *box,
                      int *flip)
{
    uint64_t st = key;
    const double area = (double)w * (double)h;
    const double lo = log(3.0 / 4.0), hi = log(4.0 / 3.0);
    *flip = unit(&st) < 0.5;
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * (min_scale + (1.0 - min_scale) * unit(&st));
        double ratio = exp(lo + (hi - lo) * unit(&st));
        int64_t cw = (int64_t)llround(sqrt(target * ratio));
        int64_t ch = (int64_t)llround(sqrt(target / ratio));
        if (cw > 0 && ch > 0 && cw <= w && ch <= h) {
            int64_t x = (int64_t)(unit(&st) * (double)(w - cw + 1));
            int64_t y = (int64_t)(unit(&st) * (double)(h - ch + 1));
            *box = (data_box){(double)x, (double)y, (double)cw, (double)ch};
            return;
        }
    }
    /* torchvision's fallback: the whole image, its ratio clamped to the range */
    double ratio = (double)w / (double)h, cw = (double)w, ch = (double)h;
    if (ratio < 3.0 / 4.0)
        ch = round(cw / (3.0 / 4.0));
    else if (ratio > 4.0 / 3.0)
        cw = round(ch * (4.0 / 3.0));
    *box = (data_box){floor(((double)w - cw) / 2), floor(((double)h - ch) / 2), cw, ch};
}

void data_center_crop(int64_t w, int64_t h, int64_t size, data_box *box)
{
    /* resize the shorter side to r = round(size / 0.875), then take size x size:
     * in the original's pixels, a square of side min(w, h) * size / r */
    double r = round((double)size / 0.875), side = (double)(w < h ? w : h) * (double)size / r;
    *box = (data_box){((double)w - side) / 2, ((double)h - side) / 2, side, side};
}

/* ------------------------------------------------------------ folders */

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int data_open_regular(const char *path, struct stat *sb)
{
    /* O_NONBLOCK: opening a FIFO or a device must not wait; regular files
     * ignore the flag */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, sb) != 0 || !S_ISREG(sb->st_mode)) {
        int err = errno;
        close(fd);
        errno = S_ISREG(sb->st_mode) ? err : EINVAL;
        return -1;
    }
    return fd;
}

/* Sorted names of the entries of dir that are folders (want_dirs) or
 * regular files: a FIFO, socket or device named like an image is never
 * opened (opening a FIFO blocks until a writer comes); those are counted
 * in *others and named on stderr. */
static char **list_dir(const char *dir, int want_dirs, int64_t *n, int64_t *others)
{
    DIR *dp = opendir(dir);
    if (!dp)
        dnal_fatal(DNAL_EXIT_DATA, "%s: cannot open the folder: %s", dir, strerror(errno));
    char **names = NULL;
    int64_t cap = 0;
    *n = 0;
    for (struct dirent *e; (e = readdir(dp));) {
        if (e->d_name[0] == '.')
            continue;
        int is_dir = e->d_type == DT_DIR, is_file = e->d_type == DT_REG;
        if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {
            char *p = data_join(dir, e->d_name);
            struct stat st;
            int ok = stat(p, &st) == 0;
            is_dir = ok && S_ISDIR(st.st_mode);
            is_file = ok && S_ISREG(st.st_mode);
            free(p);
        }
        if (!want_dirs && !is_dir && !is_file) {
            fprintf(stderr, "dnal: data: skipped %s/%s: not a regular file\n", dir, e->d_name);
            if (others)
                (*others)++;
            continue;
        }
        if (want_dirs ? !is_dir : !is_file)
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            names = dnal_realloc(names, sizeof *names * (size_t)cap);
        }
        names[(*n)++] = dnal_strdup(e->d_name);
    }
    closedir(dp);
    if (*n > 1)
        qsort(names, (size_t)*n, sizeof *names, by_name);
    return names;
}

static void free_names(char **names, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        free(names[k]);
    free(names);
}

static int64_t class_round_robin(char ***files, const int64_t *count, int64_t classes,
                               char **out_path, const char *const *class_name, int32_t *out_label)
{
    int64_t k = 0, most = 0;
    for (int64_t c = 0; c < classes; c++)
        most = count[c] > most ? count[c] : most;
    for (int64_t j = 0; j < most; j++)
        for (int64_t c = 0; c < classes; c++) {
            if (j >= count[c])
                continue;
            size_t len = strlen(class_name[c]) + strlen(files[c][j]) + 2;
            out_path[k] = dnal_alloc(len);
            snprintf(out_path[k], len, "%s/%s", class_name[c], files[c][j]);
            out_label[k++] = (int32_t)c;
        }
    return k;
}

/* The classes are the folders of PATH/train; the test split reads PATH/val
 * with the same class numbering. */
char **data_folder_scan(const char *path, dnal_split split, int64_t *n_classes, char ***paths,
                        int32_t **labels, int64_t *n, char **root, int64_t *others)
{
    char *train = data_join(path, "train");
    char **classes = list_dir(train, 1, n_classes, NULL);
    if (*n_classes < 1)
        dnal_fatal(DNAL_EXIT_DATA, "%s: no class folders (expected train/<class>/*.JPEG)", train);
    *root = split == DNAL_SPLIT_TRAIN ? train : data_join(path, "val");
    if (split != DNAL_SPLIT_TRAIN) {
        free(train);
        int64_t nv;
        char **val = list_dir(*root, 1, &nv, NULL);
        for (int64_t k = 0; k < nv; k++)
            if (!bsearch(&val[k], classes, (size_t)*n_classes, sizeof *classes, by_name))
                dnal_fatal(DNAL_EXIT_DATA, "%s/%s: a class that train/ does not have", *root,
                           val[k]);
        free_names(val, nv);
    }
    char ***files = dnal_calloc(sizeof *files * (size_t)*n_classes);
    int64_t *count = dnal_calloc(sizeof *count * (size_t)*n_classes), total = 0;
    for (int64_t c = 0; c < *n_classes; c++) {
        dnal_stop_check("scanning the class folders");
        char *dir = data_join(*root, classes[c]);
        struct stat st;
        if (stat(dir, &st) == 0)
            files[c] = list_dir(dir, 0, &count[c], others);
        else if (split == DNAL_SPLIT_TRAIN)
            dnal_fatal(DNAL_EXIT_DATA, "%s: %s", dir, strerror(errno));
        total += count[c];
        free(dir);
    }
    if (total == 0)
        dnal_fatal(DNAL_EXIT_DATA, "%s: no image files in the class folders", *root);
    *paths = dnal_alloc(sizeof **paths * (size_t)total);
    *labels = dnal_alloc(sizeof **labels * (size_t)total);
    *n = class_round_robin(files, count, *n_classes, *paths, (const char *const *)classes,
                                *labels);
    for (int64_t c = 0; c < *n_classes; c++)
        free_names(files[c], count[c]);
    free(files);
    free(count);
    return classes;
}

/* ------------------------------------------------------------ shards */

static void read_exact(int fd, void *buf, size_t len, uint64_t off, const char *file,
                       const char *what)
{
    ssize_t got = pread(fd, buf, len, (off_t)off);
    if (got != (ssize_t)len)
        dnal_fatal(DNAL_EXIT_DATA, "%s: truncated shard (%s)", file, what);
}

static void open_shards(data_stream *st, dnal_dataset *d, const char *dir, dnal_split split)
{
    const char *prefix = split == DNAL_SPLIT_TRAIN ? "train-" : "val-";
    int64_t n_all;
    char **all = list_dir(dir, 0, &n_all, &st->others);
    st->files = dnal_alloc(sizeof *st->files * (size_t)(n_all + 1));
    int64_t total = 0, cap = 0;
    for (int64_t k = 0; k < n_all; k++) {
        size_t len = strlen(all[k]);
        if (strncmp(all[k], prefix, strlen(prefix)) || len < 8 ||
            strcmp(all[k] + len - 8, ".dnshard"))
            continue;
        dnal_stop_check("opening the shards");
        char *file = data_join(dir, all[k]);
        struct stat sb;
        int fd = data_open_regular(file, &sb);
        if (fd < 0)
            dnal_fatal(DNAL_EXIT_DATA, "%s: %s", file, strerror(errno));
        const uint64_t size = (uint64_t)sb.st_size;
        char head[SHARD_HEADER_BYTES];
        read_exact(fd, head, sizeof head, 0, file, "header");
        if (memcmp(head, SHARD_MAGIC, 8))
            dnal_fatal(DNAL_EXIT_DATA, "%s: not a dnal shard (bad magic)", file);
        shard_header h;
        memcpy(&h.version, head + 8, 4);
        memcpy(&h.classes, head + 12, 4);
        memcpy(&h.count, head + 16, 8);
        memcpy(&h.names_bytes, head + 24, 8);
        memcpy(&h.index_offset, head + 32, 8);
        memcpy(&h.data_offset, head + 40, 8);
        if (h.version != SHARD_VERSION)
            dnal_fatal(DNAL_EXIT_DATA, "%s: shard version %u, this dnal reads %d", file, h.version,
                       SHARD_VERSION);
        /* every part lies in the file, in order: names, index, pixels; each
         * comparison is of quantities already known to fit, so none wraps.
         * Every class name takes at least its terminating byte. */
        if (h.classes < 1 || h.names_bytes > (1u << 26) || h.classes > h.names_bytes ||
            h.names_bytes > size - SHARD_HEADER_BYTES ||
            h.index_offset < SHARD_HEADER_BYTES + h.names_bytes || h.index_offset > size ||
            h.count > (size - h.index_offset) / sizeof(shard_record) ||
            h.data_offset < h.index_offset + h.count * sizeof(shard_record) ||
            h.data_offset > size)
            dnal_fatal(DNAL_EXIT_DATA, "%s: malformed shard header (its parts do not fit the "
                       "%llu-byte file: truncated or damaged?)", file, (unsigned long long)size);
        char *names = dnal_alloc_input(h.names_bytes + 1, 1, 0, file, "class names");
        read_exact(fd, names, h.names_bytes, SHARD_HEADER_BYTES, file, "class names");
        names[h.names_bytes] = '\0';
        if (!st->class_name) {
            d->classes = h.classes;
            st->class_name = dnal_alloc(sizeof *st->class_name * h.classes);
            const char *p = names;
            for (uint32_t c = 0; c < h.classes; c++, p += strlen(p) + 1) {
                if (p >= names + h.names_bytes)
                    dnal_fatal(DNAL_EXIT_DATA, "%s: malformed class names", file);
                st->class_name[c] = dnal_strdup(p);
            }
        } else {
            const char *p = names;
            for (uint32_t c = 0; c < h.classes && c < d->classes; c++, p += strlen(p) + 1)
                if (p >= names + h.names_bytes || strcmp(p, st->class_name[c]))
                    h.classes = 0;
            if (h.classes != d->classes)
                dnal_fatal(DNAL_EXIT_DATA, "%s: other class names than %s", file,
                           st->files[0].name);
        }
        free(names);
        /* the index is in the file: no larger than the file */
        shard_record *rec = dnal_alloc_input(h.count ? h.count : 1, sizeof *rec,
                                             (size_t)size, file, "record index");
        read_exact(fd, rec, sizeof *rec * h.count, h.index_offset, file, "index");
        if (total + (int64_t)h.count > cap) {
            cap = 2 * (total + (int64_t)h.count);
            st->sample = dnal_realloc(st->sample, sizeof *st->sample * (size_t)cap);
            st->label = dnal_realloc(st->label, sizeof *st->label * (size_t)cap);
        }
        for (uint64_t r = 0; r < h.count; r++) {
            /* h * w * 3 < 2^34: no wrap; offset is compared before it is added to */
            const uint64_t bytes = (uint64_t)rec[r].h * rec[r].w * 3;
            const int past_end = rec[r].offset > size || bytes > size - rec[r].offset;
            if (rec[r].label >= h.classes || rec[r].h == 0 || rec[r].w == 0 ||
                rec[r].offset < h.data_offset || past_end)
                dnal_fatal(DNAL_EXIT_DATA, "%s: record %llu (offset %llu, %ux%u, label %u) is %s",
                           file, (unsigned long long)r, (unsigned long long)rec[r].offset,
                           (unsigned)rec[r].h, (unsigned)rec[r].w, (unsigned)rec[r].label,
                           past_end ? "past the end of the file (truncated or damaged shard)"
                                    : "malformed");
            st->sample[total] = (shard_sample){rec[r].offset, st->n_files, rec[r].h, rec[r].w};
            st->label[total++] = (int32_t)rec[r].label;
        }
        free(rec);
        st->files[st->n_files++] = (shard_file){fd, file};
    }
    free_names(all, n_all);
    if (st->n_files == 0)
        dnal_fatal(DNAL_EXIT_DATA, "%s: no %s*.dnshard files (made by dnal prep imagenet)", dir,
                   prefix);
    d->n = total;
}

/* ------------------------------------------------------------ the dataset */

void data_stream_open(dnal_dataset *d, const dnal_data_cfg *cfg, int shards)
{
    data_stream *st = dnal_calloc(sizeof *st);
    st->shards = shards;
    st->max_pixels = cfg->max_pixels;
    st->crop_min_scale = cfg->crop_min_scale > 0 ? cfg->crop_min_scale : 0.08;
    const char *path = cfg->path && cfg->path[0] ? cfg->path : NULL;
    if (!path)
        dnal_fatal(DNAL_EXIT_USAGE, "data.path must name the %s folder",
                   shards ? "shard" : "ImageNet");
    if (cfg->image_size < 0 || cfg->image_size > 4096)
        dnal_fatal(DNAL_EXIT_USAGE, "data.image_size = %lld is out of range",
                   (long long)cfg->image_size);
    d->name = shards ? "imagenet-shards" : "imagenet";
    d->c = 3;
    d->h = d->w = cfg->image_size ? cfg->image_size : 224;
    if (shards) {
        open_shards(st, d, path, d->split);
    } else {
        st->class_name = data_folder_scan(path, d->split, &d->classes, &st->path, &st->label,
                                          &d->n, &st->root, &st->others);
    }
    for (int c = 0; c < 3; c++) {
        st->scale[c] = (float)(1.0 / (255.0 * imagenet_std[c]));
        st->shift[c] = (float)(-imagenet_mean[c] / imagenet_std[c]);
    }
    st->n_all = d->n;
    st->bad = dnal_calloc((size_t)d->n);
    pthread_mutex_init(&st->report, NULL);
    d->stream = st;
    d->augment = cfg->augment && d->split == DNAL_SPLIT_TRAIN;
}

/* the shard files and where each sample lies in them */
static void close_shards(data_stream *st)
{
    for (int f = 0; f < st->n_files; f++) {
        close(st->files[f].fd);
        free(st->files[f].name);
    }
    free(st->files);
    free(st->sample);
}

void data_stream_close(dnal_dataset *d)
{
    data_stream *st = d->stream;
    if (!st)
        return;
    d->stream = NULL;
    free_names(st->path, st->path ? st->n_all : 0);
    free_names(st->class_name, st->class_name ? d->classes : 0);
    close_shards(st);
    pthread_mutex_destroy(&st->report);
    free(st->root);
    free(st->label);
    free(st->bad);
    free(st);
}

typedef struct box_choice {
    const dnal_dataset *d;
    uint64_t key;
    int flip;
} box_choice;

static void choose_box(void *arg, int64_t w, int64_t h, data_box *box)
{
    box_choice *b = arg;
    if (b->d->augment)
        data_random_crop(b->key, w, h, b->d->stream->crop_min_scale, box, &b->flip);
    else
        data_center_crop(w, h, b->d->h, box);
}

/* Reads a whole file into s->file; 0, or -1 with the reason. */
static int read_file(const char *path, data_scratch *s, size_t *len, char *why, size_t why_len)
{
    struct stat sb;
    int fd = data_open_regular(path, &sb);
    if (fd < 0) {
        snprintf(why, why_len, "%s", errno == EINVAL ? "not a regular file" : strerror(errno));
        return -1;
    }
    s->file = data_grow(s->file, &s->file_cap, (size_t)sb.st_size + 1);
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t r = read(fd, s->file + got, (size_t)sb.st_size - got);
        if (r <= 0) {
            snprintf(why, why_len, "read failed: %s", r < 0 ? strerror(errno) : "short file");
            close(fd);
            return -1;
        }
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return 0;
}

/* Sample j into chw; 0, or -1 with the reason the file is unusable. */
static int decode(const dnal_dataset *d, int64_t epoch, int64_t i, int64_t j, float *chw,
                  data_scratch *s, char *why, size_t why_len)
{
    const data_stream *st = d->stream;
    box_choice bc = {d, data_hash3(d->seed ^ DATA_TAG_CROP, (uint64_t)epoch, (uint64_t)i), 0};
    s->max_pixels = st->max_pixels;
    data_region r;
    if (st->shards) {
        const shard_sample *at = &st->sample[j];
        const shard_file *file = &st->files[at->file];
        size_t bytes = (size_t)at->h * at->w * 3;
        s->file = data_grow(s->file, &s->file_cap, bytes);
        if (pread(file->fd, s->file, bytes, (off_t)at->offset) != (ssize_t)bytes) {
            snprintf(why, why_len, "short read from %s", file->name);
            return -1;
        }
        r = (data_region){.pix = s->file, .w = at->w, .h = at->h, .stride = 3 * at->w, .comps = 3};
        choose_box(&bc, r.w, r.h, &r.box);
    } else {
        char *path = data_join(st->root, st->path[j]);
        size_t len = 0;
        int rc = read_file(path, s, &len, why, why_len);
        free(path);
        if (rc || data_jpeg_decode(s->file, len, d->w, d->h, choose_box, &bc, s, &r, why, why_len))
            return -1;
    }
    data_resample_chw(&r, d->w, d->h, bc.flip, st->scale, st->shift, s, chw);
    return 0;
}

void data_stream_get(const dnal_dataset *d, int64_t epoch, int64_t i, float *chw, int32_t *label,
                     data_scratch *s)
{
    data_stream *st = d->stream;
    char why[256];
    for (int64_t t = 0; t < d->n; t++) {
        int64_t j = (i + t) % d->n;
        if (__atomic_load_n(&st->bad[j], __ATOMIC_RELAXED))
            continue;
        if (decode(d, epoch, i, j, chw, s, why, sizeof why) == 0) {
            if (label)
                *label = st->label[j];
            return;
        }
        if (__atomic_exchange_n(&st->bad[j], 1, __ATOMIC_RELAXED))
            continue; /* another thread met it first and reported it */
        pthread_mutex_lock(&st->report);
        if (st->shards)
            fprintf(stderr, "dnal: data: skipped %s record %lld: %s\n",
                    st->files[st->sample[j].file].name, (long long)j, why);
        else
            fprintf(stderr, "dnal: data: skipped %s/%s: %s\n", st->root, st->path[j], why);
        pthread_mutex_unlock(&st->report);
    }
    dnal_fatal(DNAL_EXIT_DATA, "%s: no readable image among the %lld samples",
               st->shards ? st->files[0].name : st->root, (long long)d->n);
}

const char *dnal_dataset_same_classes(const dnal_dataset *a, const dnal_dataset *b)
{
    static __thread char why[512];
    if (!a->stream || !b->stream || !a->stream->class_name || !b->stream->class_name)
        return a->classes == b->classes ? NULL : "the splits hold different numbers of classes";
    for (int64_t c = 0; c < a->classes && c < b->classes; c++)
        if (strcmp(a->stream->class_name[c], b->stream->class_name[c])) {
            snprintf(why, sizeof why, "class %lld is '%s' in the train split, '%s' in the test "
                     "split: both must carry the same class names", (long long)c,
                     a->stream->class_name[c], b->stream->class_name[c]);
            return why;
        }
    return a->classes == b->classes ? NULL : "the splits hold different numbers of classes";
}

int64_t dnal_dataset_skipped(const dnal_dataset *d)
{
    int64_t n = d->stream ? d->stream->others : 0;
    for (int64_t k = 0; d->stream && k < d->n; k++)
        n += __atomic_load_n(&d->stream->bad[k], __ATOMIC_RELAXED) != 0;
    return n;
}

void dnal_dataset_skip_flags(const dnal_dataset *d, uint8_t *out)
{
    for (int64_t k = 0; k < d->n; k++)
        out[k] = d->stream ? __atomic_load_n(&d->stream->bad[k], __ATOMIC_RELAXED) : 0;
}

void dnal_dataset_merge_skip_flags(dnal_dataset *d, const uint8_t *in)
{
    for (int64_t k = 0; d->stream && k < d->n; k++)
        if (in[k])
            __atomic_store_n(&d->stream->bad[k], 1, __ATOMIC_RELAXED);
}
