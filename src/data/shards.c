/* dnal prep imagenet: JPEG folders packed into shards of raw RGB bytes
 * (format in shards.h), decoded once so that training reads pixels instead
 * of decoding JPEGs. Each image: shorter side resized to `size`, longer
 * side cut to its central 4/3 of that. Shards are independent, so ranks
 * take them in turn; inside a shard, chunks of images are decoded in
 * parallel (OpenMP) and written in order. A shard is written under a
 * temporary name and renamed when complete; files that cannot be decoded
 * are named on stderr and in <split>-NNNNN.skipped beside the shard. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <omp.h>

#include "internal.h"
#include "shards.h"

enum { CHUNK = 64 };

typedef struct packed {
    uint8_t *pix;   /* h x w x 3, NULL: skipped */
    int64_t h, w;
    char why[200];
} packed;

typedef struct prep_box {
    int64_t size, out_w, out_h;
} prep_box;

/* the central region: the shorter side whole, the longer at most 4/3 of it */
static void keep_center(void *arg, int64_t w, int64_t h, data_box *box)
{
    prep_box *p = arg;
    double s = (double)(w < h ? w : h), cap = s * 4.0 / 3.0;
    double bw = (double)w > cap ? cap : (double)w, bh = (double)h > cap ? cap : (double)h;
    *box = (data_box){((double)w - bw) / 2, ((double)h - bh) / 2, bw, bh};
    p->out_w = (int64_t)llround(bw * (double)p->size / s);
    p->out_h = (int64_t)llround(bh * (double)p->size / s);
}

/* dims of the output: decode needs them before the header is read, so
 * ask for the shorter side only and let the box set the rest */
static void pack_one(const char *path, int64_t size, data_scratch *s, packed *out)
{
    struct stat sb;
    int fd = data_open_regular(path, &sb);
    out->pix = NULL;
    if (fd < 0) {
        snprintf(out->why, sizeof out->why, "%s",
                 errno == EINVAL ? "not a regular file" : strerror(errno));
        return;
    }
    size_t len = (size_t)sb.st_size, got = 0;
    s->file = data_grow(s->file, &s->file_cap, len > 0 ? len : 1);
    for (ssize_t r = 1; got < len && r > 0; got += r > 0 ? (size_t)r : 0)
        r = read(fd, s->file + got, len - got);
    close(fd);
    if (len == 0 || got != len) {
        snprintf(out->why, sizeof out->why, "cannot read the file");
        return;
    }
    prep_box pb = {.size = size};
    data_region r;
    if (data_jpeg_decode(s->file, got, size, size, keep_center, &pb, s, &r, out->why,
                         sizeof out->why))
        return;
    out->h = pb.out_h, out->w = pb.out_w;
    out->pix = dnal_alloc((size_t)(out->h * out->w * 3));
    data_resample_hwc8(&r, out->w, out->h, s, out->pix);
}

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static void write_or_die(FILE *f, const void *buf, size_t len, const char *file)
{
    if (len && fwrite(buf, 1, len, f) != len)
        dnal_fatal(DNAL_EXIT_DATA, "%s: write failed: %s", file, strerror(errno));
}

/* shard k: images [first, first + count) of the split */
static int64_t write_shard(const char *out, const char *split, int64_t k, char *const *paths,
                           const int32_t *labels, int64_t first, int64_t count, const char *root,
                           char *const *classes, int64_t n_classes, int64_t size,
                           int64_t max_pixels, int64_t *skipped)
{
    char file[4096], tmp[4200], skip_file[4096];
    snprintf(file, sizeof file, "%s/%s-%05lld.dnshard", out, split, (long long)k);
    snprintf(tmp, sizeof tmp, "%s.tmp", file);
    snprintf(skip_file, sizeof skip_file, "%s/%s-%05lld.skipped", out, split, (long long)k);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        dnal_fatal(DNAL_EXIT_DATA, "%s: %s", tmp, strerror(errno));
    uint64_t names_bytes = 0;
    for (int64_t c = 0; c < n_classes; c++)
        names_bytes += strlen(classes[c]) + 1;
    const uint64_t index_offset = SHARD_HEADER_BYTES + names_bytes;
    const uint64_t data_offset = index_offset + sizeof(shard_record) * (uint64_t)count;
    shard_record *index = dnal_calloc(sizeof *index * (size_t)(count ? count : 1));
    /* header and names now, the index once the records are known */
    uint8_t head[SHARD_HEADER_BYTES] = {0};
    write_or_die(f, head, sizeof head, tmp);
    for (int64_t c = 0; c < n_classes; c++)
        write_or_die(f, classes[c], strlen(classes[c]) + 1, tmp);
    write_or_die(f, index, sizeof *index * (size_t)count, tmp);
    uint64_t at = data_offset, kept = 0;
    FILE *skips = NULL;
    packed chunk[CHUNK];
    for (int64_t c0 = first; c0 < first + count; c0 += CHUNK) {
        int64_t nc = first + count - c0 < CHUNK ? first + count - c0 : CHUNK;
#pragma omp parallel
        {
            data_scratch s = {.max_pixels = max_pixels};
#pragma omp for schedule(dynamic, 1)
            for (int64_t q = 0; q < nc; q++) {
                char *path = data_join(root, paths[c0 + q]);
                pack_one(path, size, &s, &chunk[q]);
                free(path);
            }
            data_scratch_free(&s);
        }
        for (int64_t q = 0; q < nc; q++) {
            packed *p = &chunk[q];
            if (!p->pix) {
                fprintf(stderr, "dnal prep: skipped %s/%s: %s\n", root, paths[c0 + q], p->why);
                if (!skips && !(skips = fopen(skip_file, "w")))
                    dnal_fatal(DNAL_EXIT_DATA, "%s: %s", skip_file, strerror(errno));
                fprintf(skips, "%s/%s\t%s\n", root, paths[c0 + q], p->why);
                (*skipped)++;
                continue;
            }
            if (p->h > 65535 || p->w > 65535)
                dnal_fatal(DNAL_EXIT_USAGE, "--size %lld makes images too large", (long long)size);
            size_t bytes = (size_t)(p->h * p->w * 3);
            write_or_die(f, p->pix, bytes, tmp);
            index[kept++] = (shard_record){at, (uint32_t)labels[c0 + q], (uint16_t)p->h,
                                           (uint16_t)p->w};
            at += bytes;
            free(p->pix);
        }
    }
    if (skips)
        fclose(skips);
    memcpy(head, SHARD_MAGIC, 8);
    put32(head + 8, SHARD_VERSION);
    put32(head + 12, (uint32_t)n_classes);
    put64(head + 16, kept);
    put64(head + 24, names_bytes);
    put64(head + 32, index_offset);
    put64(head + 40, data_offset);
    if (fseek(f, 0, SEEK_SET))
        dnal_fatal(DNAL_EXIT_DATA, "%s: seek failed", tmp);
    write_or_die(f, head, sizeof head, tmp);
    if (fseek(f, (long)index_offset, SEEK_SET))
        dnal_fatal(DNAL_EXIT_DATA, "%s: seek failed", tmp);
    write_or_die(f, index, sizeof *index * kept, tmp);
    free(index);
    if (fflush(f) || fsync(fileno(f)) || fclose(f) || rename(tmp, file))
        dnal_fatal(DNAL_EXIT_DATA, "%s: cannot complete the shard: %s", file, strerror(errno));
    return (int64_t)kept;
}

dnal_prep_stats dnal_prep_imagenet(const char *src, const char *out, const char *split,
                                   int64_t size, int64_t per_shard, int rank, int nranks,
                                   int64_t max_pixels)
{
    dnal_prep_stats st = {0};
    if (size < 8 || size > 4096 || per_shard < 1)
        dnal_fatal(DNAL_EXIT_USAGE, "prep: --size must be 8..4096 and --per-shard >= 1");
    if (mkdir(out, 0755) != 0 && errno != EEXIST)
        dnal_fatal(DNAL_EXIT_DATA, "%s: %s", out, strerror(errno));
    int64_t n_classes, n, others = 0;
    char **paths, *root;
    int32_t *labels;
    char **classes = data_folder_scan(src, strcmp(split, "train") ? DNAL_SPLIT_TEST
                                                                  : DNAL_SPLIT_TRAIN,
                                      &n_classes, &paths, &labels, &n, &root, &others);
    if (rank == 0)
        st.skipped += others; /* every rank scans alike: counted once */
    st.shards = (n + per_shard - 1) / per_shard;
    for (int64_t k = rank; k < st.shards; k += nranks) {
        int64_t first = k * per_shard, count = n - first < per_shard ? n - first : per_shard;
        int64_t skipped = 0;
        int64_t kept = write_shard(out, split, k, paths, labels, first, count, root, classes,
                                   n_classes, size, max_pixels, &skipped);
        st.images += kept;
        st.skipped += skipped;
        printf("prep shard=%s-%05lld images=%lld skipped=%lld\n", split, (long long)k,
               (long long)kept, (long long)skipped);
        fflush(stdout);
    }
    for (int64_t k = 0; k < n; k++)
        free(paths[k]);
    for (int64_t c = 0; c < n_classes; c++)
        free(classes[c]);
    free(paths);
    free(classes);
    free(labels);
    free(root);
    return st;
}
