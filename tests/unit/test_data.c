/* Datasets: small files written here in the real formats (gzipped IDX,
 * CIFAR-10 binary records), shapes, labels, normalisation, the limit,
 * augmentation, the epoch order and batches; bad inputs, each in a forked
 * child that must exit with the right code and name the file and the
 * problem; and the real Fashion-MNIST when it is installed. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zlib.h>

#include "dnal/core.h"
#include "dnal/data.h"
#include "tap.h"

#define FMNIST_MEAN 0.2860
#define FMNIST_STD 0.3530
static const double cifar_mean[3] = {0.4914, 0.4822, 0.4465};
static const double cifar_std[3] = {0.2470, 0.2435, 0.2616};

enum { CIFAR_PIXELS = 3072, CIFAR_RECORD = 3073, PATH_LEN = 4096 };

static char tmp[] = "/tmp/dnal-test-data-XXXXXX";

/* ---- writing files in the real formats ---- */

static void subdir(const char *name, char *out)
{
    snprintf(out, PATH_LEN, "%s/%s", tmp, name);
    mkdir(out, 0700);
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* An IDX file: magic, dims, then `bytes` of data (fewer than the dims say
 * to make it truncated); gzipped when the name ends in .gz. */
static void write_idx(const char *path, uint32_t magic, int ndims, const uint32_t *dims,
                      const uint8_t *data, size_t bytes)
{
    uint8_t head[16];
    put_be32(head, magic);
    for (int k = 0; k < ndims; k++)
        put_be32(head + 4 + 4 * k, dims[k]);
    size_t head_bytes = 4 + 4 * (size_t)ndims;
    if (strstr(path, ".gz")) {
        gzFile g = gzopen(path, "wb");
        if (!g || gzwrite(g, head, (unsigned)head_bytes) != (int)head_bytes ||
            (bytes && gzwrite(g, data, (unsigned)bytes) != (int)bytes) || gzclose(g) != Z_OK) {
            perror(path);
            exit(99);
        }
    } else {
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(head, 1, head_bytes, f) != head_bytes ||
            fwrite(data, 1, bytes, f) != bytes || fclose(f) != 0) {
            perror(path);
            exit(99);
        }
    }
}

/* prefix "train" or "t10k"; suffix ".gz" or "" */
static void write_fmnist(const char *dir, const char *prefix, const char *suffix,
                         uint32_t image_magic, uint32_t n_images, uint32_t rows, uint32_t cols,
                         const uint8_t *pixels, size_t pixel_bytes, uint32_t label_magic,
                         uint32_t n_labels, const uint8_t *labels)
{
    char path[PATH_LEN];
    uint32_t dims[3] = {n_images, rows, cols};
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte%s", dir, prefix, suffix);
    write_idx(path, image_magic, 3, dims, pixels, pixel_bytes);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte%s", dir, prefix, suffix);
    write_idx(path, label_magic, 1, &n_labels, labels, n_labels);
}

/* n records, then `extra` junk bytes (a malformed size when extra > 0) */
static void write_cifar(const char *dir, const char *name, int n, const uint8_t *labels,
                        const uint8_t *pixels, size_t extra)
{
    char path[PATH_LEN];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(99);
    }
    for (int r = 0; r < n; r++) {
        fputc(labels[r], f);
        fwrite(pixels + (size_t)r * CIFAR_PIXELS, 1, CIFAR_PIXELS, f);
    }
    for (size_t k = 0; k < extra; k++)
        fputc(7, f);
    fclose(f);
}

static const char *cifar_train_names[5] = {"data_batch_1.bin", "data_batch_2.bin",
                                           "data_batch_3.bin", "data_batch_4.bin",
                                           "data_batch_5.bin"};

/* a full CIFAR folder: `per_file` records in each training file, `n_test` in the test file */
static void write_cifar_dir(const char *dir, const int per_file[5], int n_test,
                            const uint8_t *labels, const uint8_t *pixels)
{
    int first = 0;
    for (int k = 0; k < 5; k++) {
        write_cifar(dir, cifar_train_names[k], per_file[k], labels + first,
                    pixels + (size_t)first * CIFAR_PIXELS, 0);
        first += per_file[k];
    }
    write_cifar(dir, "test_batch.bin", n_test, labels, pixels, 0);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* ---- bad inputs: the open must end the process with `code` ---- */

/* LeakSanitizer would report what a dying child still holds; the child
 * exits on purpose, so leak checking is off there (weak: absent without ASan). */
extern void __lsan_disable(void) __attribute__((weak));

static void expect_exit(const dnal_data_cfg *cfg, dnal_split split, int code, const char *needle1,
                        const char *needle2, const char *what)
{
    char err_path[PATH_LEN], msg[4096] = "";
    snprintf(err_path, sizeof err_path, "%s/stderr.txt", tmp);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (__lsan_disable)
            __lsan_disable();
        if (!freopen(err_path, "w", stderr))
            _exit(98);
        dnal_dataset *d = dnal_dataset_open(cfg, split);
        dnal_dataset_close(d);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    FILE *f = fopen(err_path, "r");
    if (f) {
        size_t got = fread(msg, 1, sizeof msg - 1, f);
        msg[got] = '\0';
        fclose(f);
    }
    char *nl = strchr(msg, '\n');
    if (nl && nl[1] == '\0')
        *nl = '\0';
    int ok = WIFEXITED(status) && WEXITSTATUS(status) == code && strstr(msg, needle1) &&
             (!needle2 || strstr(msg, needle2));
    tap_ok(ok, "%s: exit %d, message names '%s'%s%s", what, code, needle1,
           needle2 ? " and " : "", needle2 ? needle2 : "");
    tap_diag("status %d: %s", WIFEXITED(status) ? WEXITSTATUS(status) : -1, msg);
}

static void bad_inputs(void)
{
    char dir[PATH_LEN];
    uint8_t pixels[5 * 28 * 28] = {0}, labels[5] = {1, 2, 3, 4, 5};
    dnal_data_cfg cfg = {.name = "fashion-mnist", .path = dir};

    subdir("empty", dir);
    expect_exit(&cfg, DNAL_SPLIT_TRAIN, 2, "empty/train-images-idx3-ubyte.gz", "No such file",
                "fashion-mnist missing file");

    subdir("truncated", dir);
    write_fmnist(dir, "train", ".gz", 0x803, 5, 28, 28, pixels, 3 * 28 * 28, 0x801, 5, labels);
    expect_exit(&cfg, DNAL_SPLIT_TRAIN, 2, "truncated/train-images-idx3-ubyte.gz", "truncated",
                "truncated images file");

    subdir("truncated-labels", dir);
    write_fmnist(dir, "t10k", "", 0x803, 5, 28, 28, pixels, sizeof pixels, 0x801, 5, labels);
    {
        char path[PATH_LEN + 64];
        uint32_t n = 5;
        snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte", dir);
        write_idx(path, 0x801, 1, &n, labels, 2); /* 5 promised, 2 written */
    }
    expect_exit(&cfg, DNAL_SPLIT_TEST, 2, "truncated-labels/t10k-labels-idx1-ubyte", "truncated",
                "truncated labels file (no .gz)");

    subdir("cut-gzip", dir);
    {
        /* a gzip stream cut in the middle: varied bytes so it compresses poorly */
        uint8_t big[5 * 28 * 28];
        for (size_t k = 0; k < sizeof big; k++)
            big[k] = (uint8_t)(k * 2654435761u >> 13);
        write_fmnist(dir, "train", ".gz", 0x803, 5, 28, 28, big, sizeof big, 0x801, 5, labels);
        char path[PATH_LEN + 64];
        snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
        struct stat st;
        stat(path, &st);
        if (truncate(path, st.st_size / 2) != 0)
            perror(path);
    }
    expect_exit(&cfg, DNAL_SPLIT_TRAIN, 2, "cut-gzip/train-images-idx3-ubyte.gz", "truncated",
                "gzip stream cut short");

    subdir("magic", dir);
    write_fmnist(dir, "train", ".gz", 0x804, 5, 28, 28, pixels, sizeof pixels, 0x801, 5, labels);
    expect_exit(&cfg, DNAL_SPLIT_TRAIN, 2, "magic/train-images-idx3-ubyte.gz",
                "wrong magic number 0x00000804 (expected 0x00000803", "wrong images magic");

    subdir("label-magic", dir);
    write_fmnist(dir, "train", ".gz", 0x803, 5, 28, 28, pixels, sizeof pixels, 0x803, 5, labels);
    expect_exit(&cfg, DNAL_SPLIT_TRAIN, 2, "label-magic/train-labels-idx1-ubyte.gz",
                "wrong magic number 0x00000803 (expected 0x00000801", "wrong labels magic");

    subdir("label-range", dir);
    uint8_t bad_labels[5] = {1, 2, 10, 4, 5};
    write_fmnist(dir, "train", ".gz", 0x803, 5, 28, 28, pixels, sizeof pixels, 0x801, 5,
                 bad_labels);
    expect_exit(&cfg, DNAL_SPLIT_TRAIN, 2, "label-range/train-labels-idx1-ubyte.gz",
                "label 10 of sample 2 is out of range", "IDX label out of range");

    subdir("count", dir);
    write_fmnist(dir, "train", ".gz", 0x803, 5, 28, 28, pixels, sizeof pixels, 0x801, 4, labels);
    expect_exit(&cfg, DNAL_SPLIT_TRAIN, 2, "count/train-labels-idx1-ubyte.gz",
                "4 labels but", "image/label count mismatch");

    cfg.image_size = 32;
    expect_exit(&cfg, DNAL_SPLIT_TRAIN, 1, "data.image_size = 32", "fashion-mnist",
                "fashion-mnist image_size 32");
    cfg.image_size = 0;

    /* CIFAR-10 */
    static uint8_t cpix[4 * CIFAR_PIXELS];
    uint8_t clab[4] = {0, 9, 3, 3};
    cfg.name = "cifar10";
    subdir("cifar-missing", dir);
    for (int k = 0; k < 5; k++)
        if (k != 2)
            write_cifar(dir, cifar_train_names[k], 2, clab, cpix, 0);
    expect_exit(&cfg, DNAL_SPLIT_TRAIN, 2, "cifar-missing/data_batch_3.bin", "No such file",
                "CIFAR missing file");

    subdir("cifar-size", dir);
    write_cifar(dir, "test_batch.bin", 2, clab, cpix, 5);
    expect_exit(&cfg, DNAL_SPLIT_TEST, 2, "cifar-size/test_batch.bin",
                "truncated or malformed: 6151 bytes is not a multiple of 3073-byte records",
                "CIFAR size not a multiple of 3073");

    subdir("cifar-empty", dir);
    write_cifar(dir, "test_batch.bin", 0, clab, cpix, 0);
    expect_exit(&cfg, DNAL_SPLIT_TEST, 2, "cifar-empty/test_batch.bin",
                "0 bytes is not a multiple", "CIFAR empty file");

    subdir("cifar-label", dir);
    uint8_t clab_bad[4] = {0, 10, 3, 3};
    for (int k = 0; k < 5; k++)
        write_cifar(dir, cifar_train_names[k], 2, k == 3 ? clab_bad : clab, cpix, 0);
    expect_exit(&cfg, DNAL_SPLIT_TRAIN, 2, "cifar-label/data_batch_4.bin",
                "record 1: label 10 is out of range", "CIFAR label out of range");

    cfg.image_size = 64;
    expect_exit(&cfg, DNAL_SPLIT_TRAIN, 1, "data.image_size = 64", "cifar10",
                "cifar10 image_size 64");
    cfg.image_size = 0;

    cfg.name = "imagenette";
    expect_exit(&cfg, DNAL_SPLIT_TRAIN, 1, "'imagenette'", "not a known dataset",
                "unknown dataset name");
}

/* ---- valid files ---- */

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0.0;
    for (size_t k = 0; k < n; k++)
        m = fmax(m, fabs((double)a[k] - b[k]));
    return m;
}

static float normalised(int v, double mean, double std)
{
    return (float)((v / 255.0 - mean) / std);
}

static void fashion_mnist_files(void)
{
    char dir[PATH_LEN];
    enum { N = 5, TEST_N = 3, HW = 28 * 28 };
    static uint8_t pixels[N * HW];
    uint8_t labels[N] = {9, 0, 3, 7, 1}, test_labels[TEST_N] = {2, 2, 8};
    for (int k = 0; k < N * HW; k++)
        pixels[k] = (uint8_t)(k * 37 % 256); /* every value 0..255 occurs */
    subdir("fmnist", dir);
    write_fmnist(dir, "train", ".gz", 0x803, N, 28, 28, pixels, sizeof pixels, 0x801, N, labels);
    /* the test split without .gz: the plain name is the fallback */
    write_fmnist(dir, "t10k", "", 0x803, TEST_N, 28, 28, pixels, TEST_N * HW, 0x801, TEST_N,
                 test_labels);

    dnal_data_cfg cfg = {.name = "fashion-mnist", .path = dir, .seed = 1};
    dnal_dataset *d = dnal_dataset_open(&cfg, DNAL_SPLIT_TRAIN);
    int64_t c, h, w;
    dnal_dataset_shape(d, &c, &h, &w);
    tap_ok(dnal_dataset_size(d) == N && dnal_dataset_classes(d) == 10 && c == 1 && h == 28 &&
               w == 28 && !strcmp(dnal_dataset_name(d), "fashion-mnist"),
           "fashion-mnist (gzipped): 5 samples, 10 classes, 1x28x28");

    float img[HW], want[HW];
    int labels_ok = 1;
    double worst = 0.0;
    for (int i = 0; i < N; i++) {
        int32_t label = -1;
        dnal_dataset_get(d, 0, i, img, &label);
        labels_ok &= label == labels[i];
        for (int p = 0; p < HW; p++)
            want[p] = normalised(pixels[i * HW + p], FMNIST_MEAN, FMNIST_STD);
        worst = fmax(worst, max_abs_diff(img, want, HW));
    }
    tap_ok(labels_ok, "fashion-mnist labels as written");
    tap_ok(worst < 1e-6, "fashion-mnist pixels = (v/255 - 0.2860)/0.3530 (max diff %.2g)", worst);
    /* by hand: k*37 % 256 for k = 0, 7 (259 % 256 = 3) and, in sample 0,
     * the pixel k where k*37 % 256 = 255 (k = 83) */
    dnal_dataset_get(d, 0, 0, img, NULL);
    tap_ok(fabs(img[0] - -0.8101983) < 1e-6 && fabs(img[83] - 2.0226629) < 1e-6,
           "fashion-mnist: byte 0 -> %.7f, byte 255 -> %.7f (by hand -0.8101983, 2.0226629)",
           img[0], img[83]);
    dnal_dataset_close(d);

    d = dnal_dataset_open(&cfg, DNAL_SPLIT_TEST);
    int32_t label = -1;
    dnal_dataset_get(d, 0, 2, img, &label);
    tap_ok(dnal_dataset_size(d) == TEST_N && label == 8,
           "fashion-mnist test split read from the uncompressed files (%lld samples)",
           (long long)dnal_dataset_size(d));
    dnal_dataset_close(d);

    cfg.limit = 3;
    d = dnal_dataset_open(&cfg, DNAL_SPLIT_TRAIN);
    dnal_dataset_get(d, 0, 2, img, &label);
    for (int p = 0; p < HW; p++)
        want[p] = normalised(pixels[2 * HW + p], FMNIST_MEAN, FMNIST_STD);
    tap_ok(dnal_dataset_size(d) == 3 && label == 3 && max_abs_diff(img, want, HW) < 1e-6,
           "limit 3 keeps the first 3 samples");
    dnal_dataset_close(d);
}

static void cifar_files(void)
{
    char dir[PATH_LEN];
    enum { N = 9, TEST_N = 4 };
    const int per_file[5] = {2, 1, 3, 1, 2};
    static uint8_t pixels[N * CIFAR_PIXELS];
    uint8_t labels[N] = {6, 9, 0, 1, 2, 3, 4, 5, 8};
    for (int k = 0; k < N * CIFAR_PIXELS; k++)
        pixels[k] = (uint8_t)(k * 101 % 256);
    pixels[0] = 255;    /* sample 0, red (0,0) */
    pixels[1024] = 0;   /* green (0,0) */
    pixels[2048] = 128; /* blue (0,0) */
    subdir("cifar", dir);
    write_cifar_dir(dir, per_file, TEST_N, labels, pixels);

    dnal_data_cfg cfg = {.name = "cifar10", .path = dir, .seed = 5};
    dnal_dataset *d = dnal_dataset_open(&cfg, DNAL_SPLIT_TRAIN);
    int64_t c, h, w;
    dnal_dataset_shape(d, &c, &h, &w);
    tap_ok(dnal_dataset_size(d) == N && dnal_dataset_classes(d) == 10 && c == 3 && h == 32 &&
               w == 32 && !strcmp(dnal_dataset_name(d), "cifar10"),
           "cifar10: 9 samples over 5 files, 10 classes, 3x32x32");
    float img[CIFAR_PIXELS], want[CIFAR_PIXELS];
    int labels_ok = 1;
    double worst = 0.0;
    for (int i = 0; i < N; i++) {
        int32_t label = -1;
        dnal_dataset_get(d, 0, i, img, &label);
        labels_ok &= label == labels[i];
        for (int p = 0; p < CIFAR_PIXELS; p++)
            want[p] = normalised(pixels[i * CIFAR_PIXELS + p], cifar_mean[p / 1024],
                                 cifar_std[p / 1024]);
        worst = fmax(worst, max_abs_diff(img, want, CIFAR_PIXELS));
    }
    tap_ok(labels_ok, "cifar10 labels in file order across the 5 training files");
    tap_ok(worst < 1e-6, "cifar10 pixels normalised per channel (max diff %.2g)", worst);
    dnal_dataset_get(d, 0, 0, img, NULL);
    tap_ok(fabs(img[0] - 2.0591093) < 1e-6 && fabs(img[1024] - -1.9802875) < 1e-6 &&
               fabs(img[2048] - 0.2120061) < 1e-6,
           "cifar10: R 255 -> %.7f, G 0 -> %.7f, B 128 -> %.7f (by hand 2.0591093, -1.9802875, "
           "0.2120061)",
           img[0], img[1024], img[2048]);
    dnal_dataset_close(d);

    d = dnal_dataset_open(&cfg, DNAL_SPLIT_TEST);
    int32_t label = -1;
    dnal_dataset_get(d, 0, 3, img, &label);
    tap_ok(dnal_dataset_size(d) == TEST_N && label == labels[3], "cifar10 test split: 4 samples");
    dnal_dataset_close(d);

    cfg.limit = 4;
    d = dnal_dataset_open(&cfg, DNAL_SPLIT_TRAIN);
    tap_ok(dnal_dataset_size(d) == 4, "cifar10 limit 4 -> %lld samples",
           (long long)dnal_dataset_size(d));
    dnal_dataset_close(d);
    cfg.limit = 100;
    d = dnal_dataset_open(&cfg, DNAL_SPLIT_TRAIN);
    tap_ok(dnal_dataset_size(d) == N, "a limit above the size keeps all samples");
    dnal_dataset_close(d);

    /* batches: with an order, and in plain order for evaluation */
    cfg.limit = 0;
    cfg.augment = 1;
    d = dnal_dataset_open(&cfg, DNAL_SPLIT_TRAIN);
    int64_t order[N];
    dnal_epoch_order(cfg.seed, 3, N, order);
    static float batch[N * CIFAR_PIXELS];
    int32_t batch_labels[N];
    int same = 1;
    dnal_batch_fill(d, order, 3, 2, 6, batch, batch_labels);
    for (int k = 0; k < 6; k++) {
        dnal_dataset_get(d, 3, order[2 + k], img, &label);
        same &= !memcmp(img, batch + k * CIFAR_PIXELS, sizeof img) && label == batch_labels[k];
    }
    dnal_batch_fill(d, NULL, 3, 1, N - 1, batch, batch_labels);
    for (int k = 0; k < N - 1; k++) {
        dnal_dataset_get(d, 3, 1 + k, img, &label);
        same &= !memcmp(img, batch + k * CIFAR_PIXELS, sizeof img) && label == batch_labels[k];
    }
    tap_ok(same, "dnal_batch_fill (augmented, with and without an order) = dnal_dataset_get");
    dnal_dataset_close(d);
}

/* ---- augmentation ---- */

/* Raw test pattern: byte 1 + 7x + (y mod 7) + c: never 0, so padding shows,
 * and the column can be read back from a pixel. */
static uint8_t pattern(int c, int y, int x)
{
    return (uint8_t)(1 + 7 * x + y % 7 + c);
}

/* The expected augmented image: output (y, x) reads raw (y + dy, x' + dx),
 * x' = x or w-1-x when flipped, raw 0 outside; then normalised. */
static void reference(int channels, int side, const double *mean, const double *std, int dy, int dx,
                      int flip, float *out)
{
    for (int c = 0; c < channels; c++)
        for (int y = 0; y < side; y++)
            for (int x = 0; x < side; x++) {
                int sy = y + dy, sx = (flip ? side - 1 - x : x) + dx;
                int v = sy >= 0 && sy < side && sx >= 0 && sx < side ? pattern(c, sy, sx) : 0;
                out[(c * side + y) * side + x] = normalised(v, mean[c], std[c]);
            }
}

typedef struct aug_stats {
    int draws, flips, in_range, matches;
    int dy_seen[9], dx_seen[9];
} aug_stats;

/* Reads (dy, dx, flip) back from an augmented pattern image and checks the
 * whole image against the reference for them. */
static void inspect(const float *img, int channels, int side, const double *mean,
                    const double *std, float *want, aug_stats *s)
{
    const float zero = normalised(0, mean[0], std[0]);
    int top = 0, bottom = 0;
    for (int y = 0; y < side; y++) {
        int pad = 1;
        for (int x = 0; x < side; x++)
            pad &= img[y * side + x] == zero;
        if (!pad)
            break;
        top++;
    }
    for (int y = side - 1; y >= 0; y--) {
        int pad = 1;
        for (int x = 0; x < side; x++)
            pad &= img[y * side + x] == zero;
        if (!pad)
            break;
        bottom++;
    }
    int dy = top ? -top : bottom;
    /* two neighbours in the middle row: the column runs backwards if flipped */
    const int y0 = side / 2, x1 = side / 2, x2 = side / 2 + 1;
    int v1 = (int)lround((img[y0 * side + x1] * std[0] + mean[0]) * 255.0);
    int v2 = (int)lround((img[y0 * side + x2] * std[0] + mean[0]) * 255.0);
    int col1 = (v1 - 1) / 7, col2 = (v2 - 1) / 7;
    int flip = col2 < col1;
    int dx = col1 - (flip ? side - 1 - x1 : x1);
    s->draws++;
    s->flips += flip;
    if (abs(dy) <= 4 && abs(dx) <= 4 && v1 > 0 && v2 > 0) {
        s->in_range++;
        s->dy_seen[dy + 4] = s->dx_seen[dx + 4] = 1;
    }
    reference(channels, side, mean, std, dy, dx, flip, want);
    s->matches += !memcmp(img, want, sizeof *img * (size_t)(channels * side * side));
}

static int all_seen(const int seen[9])
{
    int all = 1;
    for (int k = 0; k < 9; k++)
        all &= seen[k];
    return all;
}

static void augmentation(const char *name, int channels, int side, const double *mean,
                         const double *std, const char *dir, int expect_flips)
{
    enum { N = 64, EPOCHS = 64 };
    dnal_data_cfg cfg = {.name = name, .path = dir, .augment = 1, .seed = 11};
    dnal_dataset *d = dnal_dataset_open(&cfg, DNAL_SPLIT_TRAIN);
    const size_t sample = (size_t)(channels * side * side);
    float *img = malloc(sizeof *img * sample), *again = malloc(sizeof *img * sample);
    float *want = malloc(sizeof *img * sample);
    aug_stats s = {0};
    int deterministic = 1, differ = 0;
    for (int e = 0; e < EPOCHS; e++)
        for (int i = 0; i < N; i++) {
            dnal_dataset_get(d, e, i, img, NULL);
            inspect(img, channels, side, mean, std, want, &s);
            if (e < 2) {
                dnal_dataset_get(d, e, i, again, NULL);
                deterministic &= !memcmp(img, again, sizeof *img * sample);
            }
            if (e == 0) {
                dnal_dataset_get(d, 1, i, again, NULL);
                differ += memcmp(img, again, sizeof *img * sample) != 0;
            }
        }
    tap_ok(deterministic, "%s: equal (seed, epoch, i) give the same augmented sample", name);
    tap_ok(differ > N * 3 / 4, "%s: epochs 0 and 1 augment %d of %d samples differently", name,
           differ, N);
    tap_ok(s.in_range == s.draws && all_seen(s.dy_seen) && all_seen(s.dx_seen),
           "%s: crop offsets within +-4 pixels in %d of %d draws, each of -4..4 seen", name,
           s.in_range, s.draws);
    tap_ok(s.matches == s.draws,
           "%s: %d of %d augmented images equal the zero-padded crop%s, normalised", name,
           s.matches, s.draws, expect_flips ? " (+ flip)" : "");
    double frac = (double)s.flips / s.draws;
    if (expect_flips)
        tap_ok(frac > 0.45 && frac < 0.55, "%s: %d flips in %d draws (%.3f)", name, s.flips,
               s.draws, frac);
    else
        tap_ok(s.flips == 0, "%s: never flipped (%d of %d)", name, s.flips, s.draws);
    dnal_dataset_close(d);

    /* no augmentation on the test split, nor with augment off */
    cfg.limit = 1;
    int plain = 1;
    for (int split = 0; split < 2; split++) {
        cfg.augment = split == 0 ? 0 : 1;
        d = dnal_dataset_open(&cfg, split == 0 ? DNAL_SPLIT_TRAIN : DNAL_SPLIT_TEST);
        for (int e = 0; e < 8; e++) {
            dnal_dataset_get(d, e, 0, img, NULL);
            reference(channels, side, mean, std, 0, 0, 0, want);
            plain &= !memcmp(img, want, sizeof *img * sample);
        }
        dnal_dataset_close(d);
    }
    tap_ok(plain, "%s: augment off and the test split give the plain sample", name);
    free(img);
    free(again);
    free(want);
}

static void augmentation_tests(void)
{
    enum { N = 64 };
    char dir[PATH_LEN];
    static uint8_t pixels[N * CIFAR_PIXELS];
    uint8_t labels[N];
    for (int i = 0; i < N; i++) {
        labels[i] = (uint8_t)(i % 10);
        for (int p = 0; p < 28 * 28; p++)
            pixels[i * 28 * 28 + p] = pattern(0, p / 28, p % 28);
    }
    subdir("fmnist-pattern", dir);
    write_fmnist(dir, "train", ".gz", 0x803, N, 28, 28, pixels, N * 28 * 28, 0x801, N, labels);
    write_fmnist(dir, "t10k", ".gz", 0x803, N, 28, 28, pixels, N * 28 * 28, 0x801, N, labels);
    const double fm_mean[1] = {FMNIST_MEAN}, fm_std[1] = {FMNIST_STD};
    augmentation("fashion-mnist", 1, 28, fm_mean, fm_std, dir, 0);

    for (int i = 0; i < N; i++)
        for (int p = 0; p < CIFAR_PIXELS; p++)
            pixels[i * CIFAR_PIXELS + p] = pattern(p / 1024, p % 1024 / 32, p % 32);
    subdir("cifar-pattern", dir);
    const int per_file[5] = {20, 10, 10, 12, 12};
    write_cifar_dir(dir, per_file, N, labels, pixels);
    augmentation("cifar10", 3, 32, cifar_mean, cifar_std, dir, 1);
}

/* ---- epoch order ---- */

static void epoch_order(void)
{
    enum { N = 1000 };
    static int64_t a[N], b[N], c[N], e[N];
    int seen[N] = {0}, perm = 1;
    dnal_epoch_order(42, 0, N, a);
    for (int k = 0; k < N; k++) {
        if (a[k] < 0 || a[k] >= N || seen[a[k]])
            perm = 0;
        else
            seen[a[k]] = 1;
    }
    tap_ok(perm, "epoch order is a permutation of 0..%d", N - 1);
    dnal_epoch_order(42, 0, N, b);
    tap_ok(!memcmp(a, b, sizeof a), "epoch order is deterministic");
    dnal_epoch_order(42, 1, N, c);
    dnal_epoch_order(43, 0, N, e);
    int moved = 0;
    for (int k = 0; k < N; k++)
        moved += a[k] != k;
    tap_ok(memcmp(a, c, sizeof a) && memcmp(a, e, sizeof a) && moved > N / 2,
           "epoch order differs between epochs and seeds (%d of %d moved)", moved, N);
    int64_t one = -1;
    dnal_epoch_order(42, 0, 1, &one);
    dnal_epoch_order(42, 0, 0, NULL);
    tap_ok(one == 0, "epoch order of 1 sample (and of none)");
}

/* ---- synthetic ---- */

static void synthetic(void)
{
    dnal_data_cfg cfg = {.name = "synthetic", .seed = 3};
    dnal_dataset *train = dnal_dataset_open(&cfg, DNAL_SPLIT_TRAIN);
    dnal_dataset *test = dnal_dataset_open(&cfg, DNAL_SPLIT_TEST);
    int64_t c, h, w;
    dnal_dataset_shape(train, &c, &h, &w);
    tap_ok(dnal_dataset_size(train) == 1024 && dnal_dataset_size(test) == 256 &&
               dnal_dataset_classes(train) == 10 && c == 3 && h == 32 && w == 32 &&
               !strcmp(dnal_dataset_name(train), "synthetic"),
           "synthetic defaults: 1024 train / 256 test, 10 classes, 3x32x32");

    enum { HW = 32 * 32, SAMPLE = 3 * HW, N = 1024, TEST_N = 256 };
    float *images = malloc(sizeof *images * (size_t)N * SAMPLE);
    float *test_images = malloc(sizeof *images * (size_t)TEST_N * SAMPLE);
    int32_t labels[N], test_labels[TEST_N];
    int64_t order[N];
    dnal_epoch_order(3, 0, N, order);
    dnal_batch_fill(train, order, 0, 0, N, images, labels);
    float img[SAMPLE];
    int32_t label;
    int same = 1;
    for (int k = 0; k < N; k += 97) {
        dnal_dataset_get(train, 0, order[k], img, &label);
        same &= !memcmp(img, images + (size_t)k * SAMPLE, sizeof img) && label == labels[k];
    }
    tap_ok(same, "synthetic: dnal_batch_fill = dnal_dataset_get");

    dnal_batch_fill(train, NULL, 0, 0, N, images, labels);
    dnal_batch_fill(test, NULL, 0, 0, TEST_N, test_images, test_labels);
    int count[10] = {0}, in_range = 1;
    for (int i = 0; i < N; i++) {
        in_range &= labels[i] >= 0 && labels[i] < 10;
        if (in_range)
            count[labels[i]]++;
    }
    int all = in_range;
    for (int k = 0; k < 10; k++)
        all &= count[k] > 50;
    tap_ok(all, "synthetic labels in 0..9, every class > 50 times in 1024");

    double sum = 0.0, sum_sq = 0.0;
    for (size_t k = 0; k < (size_t)N * SAMPLE; k++) {
        sum += images[k];
        sum_sq += (double)images[k] * images[k];
    }
    double mean = sum / ((double)N * SAMPLE), var = sum_sq / ((double)N * SAMPLE) - mean * mean;
    tap_ok(fabs(mean) < 0.05 && fabs(var - 1.0) < 0.1, "synthetic pixels: mean %.4f, variance %.4f",
           mean, var);

    /* learnable: nearest class centroid of the channel means */
    double centroid[10][3] = {{0}};
    for (int i = 0; i < N; i++)
        for (int ch = 0; ch < 3; ch++) {
            double m = 0.0;
            for (int p = 0; p < HW; p++)
                m += images[(size_t)i * SAMPLE + ch * HW + p];
            centroid[labels[i]][ch] += m / HW / count[labels[i]];
        }
    int correct = 0;
    for (int i = 0; i < TEST_N; i++) {
        double best = INFINITY;
        int guess = -1;
        for (int k = 0; k < 10; k++) {
            double dist = 0.0;
            for (int ch = 0; ch < 3; ch++) {
                double m = 0.0;
                for (int p = 0; p < HW; p++)
                    m += test_images[(size_t)i * SAMPLE + ch * HW + p];
                dist += (m / HW - centroid[k][ch]) * (m / HW - centroid[k][ch]);
            }
            if (dist < best)
                best = dist, guess = k;
        }
        correct += guess == test_labels[i];
    }
    tap_ok(correct > TEST_N * 95 / 100, "synthetic is learnable: nearest centroid %d/%d on test",
           correct, TEST_N);

    float img2[SAMPLE];
    dnal_dataset *again = dnal_dataset_open(&cfg, DNAL_SPLIT_TRAIN);
    dnal_dataset_get(again, 5, 17, img2, &label);
    tap_ok(!memcmp(img2, images + 17 * SAMPLE, sizeof img2) && label == labels[17],
           "synthetic is a pure function of (seed, split, i): reopened, other epoch, same sample");
    dnal_dataset_get(test, 0, 17, img, NULL);
    int differs = memcmp(img, img2, sizeof img) != 0;
    cfg.seed = 4;
    dnal_dataset *other = dnal_dataset_open(&cfg, DNAL_SPLIT_TRAIN);
    dnal_dataset_get(other, 0, 17, img, NULL);
    tap_ok(differs && memcmp(img, img2, sizeof img),
           "synthetic sample 17 differs between splits and seeds");
    dnal_dataset_close(other);
    dnal_dataset_close(again);
    dnal_dataset_close(train);
    dnal_dataset_close(test);
    free(images);
    free(test_images);

    dnal_data_cfg small = {.name = "synthetic", .channels = 1, .image_size = 8, .classes = 4,
                           .samples = 100, .limit = 50, .augment = 1};
    dnal_dataset *d = dnal_dataset_open(&small, DNAL_SPLIT_TRAIN);
    dnal_dataset_shape(d, &c, &h, &w);
    float a[64], b[64];
    dnal_dataset_get(d, 0, 49, a, &label);
    dnal_dataset_get(d, 1, 49, b, NULL);
    tap_ok(dnal_dataset_size(d) == 50 && dnal_dataset_classes(d) == 4 && c == 1 && h == 8 &&
               w == 8 && label >= 0 && label < 4 && !memcmp(a, b, sizeof a),
           "synthetic 1x8x8, 4 classes, 100 samples, limit 50, no augmentation");
    dnal_dataset_close(d);
}

/* ---- the real Fashion-MNIST, when installed ---- */

static void real_fashion_mnist(void)
{
    const char *dir = "/usr/share/datasets/fashion-mnist";
    if (access(dir, R_OK) != 0) {
        tap_diag("%s not installed: real-data checks skipped", dir);
        return;
    }
    dnal_data_cfg cfg = {.name = "fashion-mnist"}; /* the default path */
    dnal_dataset *train = dnal_dataset_open(&cfg, DNAL_SPLIT_TRAIN);
    dnal_dataset *test = dnal_dataset_open(&cfg, DNAL_SPLIT_TEST);
    int64_t c, h, w;
    dnal_dataset_shape(train, &c, &h, &w);
    tap_ok(dnal_dataset_size(train) == 60000 && dnal_dataset_size(test) == 10000 &&
               dnal_dataset_classes(train) == 10 && c == 1 && h == 28 && w == 28,
           "real fashion-mnist: 60000 train / 10000 test, 10 classes, 1x28x28");
    enum { BATCH = 1000, HW = 28 * 28 };
    float *images = malloc(sizeof *images * BATCH * HW);
    int32_t labels[BATCH];
    int count[10] = {0};
    double sum = 0.0;
    for (int first = 0; first < 60000; first += BATCH) {
        dnal_batch_fill(train, NULL, 0, first, BATCH, images, labels);
        for (int k = 0; k < BATCH * HW; k++)
            sum += images[k];
        for (int k = 0; k < BATCH; k++)
            count[labels[k]]++;
    }
    double mean = sum / (60000.0 * HW);
    int balanced = 1;
    for (int k = 0; k < 10; k++)
        balanced &= count[k] == 6000;
    tap_ok(fabs(mean) < 0.01, "real fashion-mnist: mean of the normalised training pixels %.5f",
           mean);
    tap_ok(balanced, "real fashion-mnist: 6000 training samples per class");
    free(images);
    dnal_dataset_close(train);
    dnal_dataset_close(test);
}

int main(void)
{
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 99;
    }
    /* forked children first, before OpenMP starts its threads */
    bad_inputs();
    fashion_mnist_files();
    cifar_files();
    augmentation_tests();
    epoch_order();
    synthetic();
    real_fashion_mnist();
    nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return tap_done();
}
