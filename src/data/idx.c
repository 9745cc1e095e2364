/* Fashion-MNIST in IDX files, gzipped or not (zlib's gzread reads both).
 *
 * IDX is big-endian: a magic number (0x00000803 for 3-D unsigned-byte
 * images, 0x00000801 for 1-D labels), then one uint32 per dimension, then
 * the bytes. The whole split is loaded; every check names the file. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "internal.h"

enum { IDX_IMAGES_MAGIC = 0x00000803, IDX_LABELS_MAGIC = 0x00000801, FMNIST_CLASSES = 10 };

typedef struct idx_file {
    char *path; /* the name actually opened */
    gzFile gz;
} idx_file;

/* Opens dir/name.gz, or dir/name when the .gz is missing. */
static idx_file idx_open(const char *dir, const char *gz_name)
{
    idx_file f = {data_join(dir, gz_name), NULL};
    if (access(f.path, F_OK) != 0) {
        char *plain = dnal_strdup(f.path);
        plain[strlen(plain) - 3] = '\0'; /* drop ".gz" */
        if (access(plain, F_OK) != 0)
            dnal_fatal(DNAL_EXIT_DATA, "%s: cannot open: %s (nor %s)", f.path, strerror(errno),
                       plain);
        free(f.path);
        f.path = plain;
    }
    errno = 0;
    struct stat st;
    int fd = data_open_regular(f.path, &st); /* never a FIFO: opening one would wait */
    if (fd < 0)
        dnal_fatal(DNAL_EXIT_DATA, "%s: cannot open: %s", f.path,
                   errno == EINVAL ? "not a regular file" : strerror(errno));
    f.gz = gzdopen(fd, "rb");
    if (!f.gz)
        dnal_fatal(DNAL_EXIT_DATA, "%s: cannot open: %s", f.path,
                   errno ? strerror(errno) : "out of memory");
    gzbuffer(f.gz, 1 << 18);
    return f;
}

static void idx_close(idx_file *f)
{
    gzclose_r(f->gz);
    free(f->path);
}

/* Reads up to `bytes`; returns how many were read (fewer at end of file). */
static size_t idx_read(const idx_file *f, void *buf, size_t bytes)
{
    size_t done = 0;
    while (done < bytes) {
        /* 16 MiB at a time: a stop signal is noticed within a chunk */
        dnal_stop_check("loading the data");
        size_t chunk = bytes - done < (size_t)16 << 20 ? bytes - done : (size_t)16 << 20;
        int got = gzread(f->gz, (char *)buf + done, (unsigned)chunk);
        if (got < 0) {
            int err = 0;
            const char *msg = gzerror(f->gz, &err);
            dnal_fatal(DNAL_EXIT_DATA, "%s: read error: %s",
                       f->path, err == Z_ERRNO ? strerror(errno) : msg);
        }
        if (got == 0)
            break;
        done += (size_t)got;
    }
    return done;
}

/* Reads the `bytes` the header promises into a buffer that grows with what
 * the file really holds (a header may promise terabytes; gzip hides the
 * true size): memory stays within twice the data read. NULL if the file
 * ends first, with *got the bytes it held. */
static uint8_t *idx_read_all(const idx_file *f, size_t bytes, const char *what, size_t *got)
{
    size_t cap = bytes < ((size_t)16 << 20) ? bytes : ((size_t)16 << 20), have = 0;
    uint8_t *buf = dnal_alloc_input(cap ? cap : 1, 1, 0, f->path, what);
    for (;;) {
        have += idx_read(f, buf + have, cap - have);
        if (have < cap || cap == bytes)
            break;
        cap = bytes - cap < cap ? bytes : 2 * cap; /* the file kept up: room for more */
        buf = dnal_realloc(buf, cap);
    }
    *got = have;
    if (have < bytes) {
        free(buf);
        return NULL;
    }
    return buf;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads the magic and `ndims` dimensions. */
static void idx_header(const idx_file *f, uint32_t magic, const char *what, int ndims,
                       uint32_t *dims)
{
    uint8_t head[16];
    size_t want = 4 + 4 * (size_t)ndims;
    size_t got = idx_read(f, head, want);
    if (got < want)
        dnal_fatal(DNAL_EXIT_DATA, "%s: truncated: %zu bytes, shorter than the %zu-byte header",
                   f->path, got, want);
    uint32_t m = be32(head);
    if (m != magic)
        dnal_fatal(DNAL_EXIT_DATA,
                   "%s: wrong magic number 0x%08x (expected 0x%08x for IDX %s)", f->path,
                   (unsigned)m, (unsigned)magic, what);
    for (int k = 0; k < ndims; k++)
        dims[k] = be32(head + 4 + 4 * k);
}

/* Returns the path it read (for the labels' messages; free() it). */
static char *load_images(dnal_dataset *d, const char *dir, const char *gz_name)
{
    idx_file f = idx_open(dir, gz_name);
    uint32_t dims[3];
    idx_header(&f, IDX_IMAGES_MAGIC, "images", 3, dims);
    if (dims[0] == 0 || dims[1] == 0 || dims[2] == 0)
        dnal_fatal(DNAL_EXIT_DATA, "%s: bad dimensions %u x %u x %u (all must be > 0)", f.path,
                   (unsigned)dims[0], (unsigned)dims[1], (unsigned)dims[2]);
    d->n = dims[0];
    d->c = 1;
    d->h = dims[1];
    d->w = dims[2];
    /* at most 2^32 * 2^32 * 2^32: keep the product honest */
    size_t bytes;
    if (__builtin_mul_overflow((size_t)dims[0], (size_t)dims[1] * dims[2], &bytes))
        dnal_fatal(DNAL_EXIT_DATA, "%s: header promises an impossible %u x %u x %u bytes", f.path,
                   (unsigned)dims[0], (unsigned)dims[1], (unsigned)dims[2]);
    size_t got;
    d->pixels = idx_read_all(&f, bytes, "images", &got);
    if (!d->pixels)
        dnal_fatal(DNAL_EXIT_DATA,
                   "%s: truncated: the header promises %u images of %ux%u (%zu bytes) but the "
                   "file holds %zu",
                   f.path, (unsigned)dims[0], (unsigned)dims[1], (unsigned)dims[2], bytes, got);
    gzclose_r(f.gz);
    return f.path;
}

static void load_labels(dnal_dataset *d, const char *dir, const char *gz_name,
                        const char *images_path)
{
    idx_file f = idx_open(dir, gz_name);
    uint32_t n;
    idx_header(&f, IDX_LABELS_MAGIC, "labels", 1, &n);
    if ((int64_t)n != d->n)
        dnal_fatal(DNAL_EXIT_DATA, "%s: %u labels but %s holds %lld images", f.path,
                   (unsigned)n, images_path, (long long)d->n);
    size_t got;
    d->labels = idx_read_all(&f, n, "labels", &got);
    if (!d->labels)
        dnal_fatal(DNAL_EXIT_DATA,
                   "%s: truncated: the header promises %u labels but the file holds %zu",
                   f.path, (unsigned)n, got);
    for (uint32_t i = 0; i < n; i++)
        if (d->labels[i] >= FMNIST_CLASSES)
            dnal_fatal(DNAL_EXIT_DATA, "%s: label %u of sample %u is out of range (0..%d)",
                       f.path, (unsigned)d->labels[i], (unsigned)i, FMNIST_CLASSES - 1);
    idx_close(&f);
}

void data_idx_load(dnal_dataset *d, const char *dir)
{
    const int train = d->split == DNAL_SPLIT_TRAIN;
    const char *images = train ? "train-images-idx3-ubyte.gz" : "t10k-images-idx3-ubyte.gz";
    const char *labels = train ? "train-labels-idx1-ubyte.gz" : "t10k-labels-idx1-ubyte.gz";
    char *images_path = load_images(d, dir, images);
    load_labels(d, dir, labels, images_path);
    free(images_path);
    d->classes = FMNIST_CLASSES;
}
