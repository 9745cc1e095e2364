/* ImageNet data on a small tree of real JPEG files written here with
 * libjpeg (4 classes, sizes from 37x29 to 300x220, colour, greyscale and
 * Adobe CMYK, one truncated file, one file that is not a JPEG): decoding,
 * DCT downscaling and cropped decoding against a full decode, the
 * augmentation boxes' statistics, the imagenet dataset (bad files skipped
 * and counted), the loader against dnal_batch_fill, dnal prep and the
 * imagenet-shards dataset, and bad shards (exit 2 naming the file).
 *
 *   test_imagenet                          the checks (TAP)
 *   test_imagenet --make-tree DIR          only write the tree (for the shell tests)
 *   test_imagenet --make-bench-tree DIR N  N photo-sized JPEGs (decoding speed) */
#define _XOPEN_SOURCE 700 /* nftw */
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jpeglib.h>

#include "../../src/data/internal.h"
#include "dnal/data.h"
#include "tap.h"

enum { CLASSES = 4, PER_CLASS = 6, VAL_PER_CLASS = 2, PATH_LEN = 4096 };

/* a smooth picture whose colour says the class, with some texture */
static void paint(uint8_t *rgb, int w, int h, int cls, int seed)
{
    static const int base[CLASSES][3] = {{200, 40, 40}, {40, 200, 40}, {40, 40, 200}, {200, 200, 40}};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                double v = base[cls][c] + 40 * sin(0.11 * x + 0.07 * y + seed + c) +
                           20.0 * y / h;
                rgb[(y * w + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
}

/* kind 0 RGB, 1 greyscale, 2 Adobe CMYK */
static void write_jpeg(const char *path, const uint8_t *rgb, int w, int h, int kind, int quality)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(99);
    }
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = kind == 1 ? 1 : kind == 2 ? 4 : 3;
    c.in_color_space = kind == 1 ? JCS_GRAYSCALE : kind == 2 ? JCS_CMYK : JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    uint8_t *row = malloc((size_t)w * 4);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            const uint8_t *p = rgb + (y * w + x) * 3;
            if (kind == 1)
                row[x] = (uint8_t)((p[0] * 3 + p[1] * 6 + p[2]) / 10);
            else if (kind == 2) { /* Adobe stores inverted ink: C' = R, K' = 255 */
                row[4 * x] = p[0], row[4 * x + 1] = p[1], row[4 * x + 2] = p[2], row[4 * x + 3] = 255;
            } else
                memcpy(row + 3 * x, p, 3);
        }
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
    free(row);
}

static void make_dir(const char *p)
{
    if (mkdir(p, 0755) && access(p, F_OK)) {
        perror(p);
        exit(99);
    }
}

/* The tree: DIR/train/n0000000{0..3}/img_K.JPEG, DIR/val/... */
static void make_tree(const char *dir)
{
    static const int sizes[][2] = {{64, 48}, {37, 29}, {120, 90}, {48, 96}, {300, 220}, {80, 80}};
    char p[PATH_LEN];
    make_dir(dir);
    const char *splits[2] = {"train", "val"};
    for (int s = 0; s < 2; s++) {
        snprintf(p, sizeof p, "%s/%s", dir, splits[s]);
        make_dir(p);
        for (int cls = 0; cls < CLASSES; cls++) {
            snprintf(p, sizeof p, "%s/%s/n%08d", dir, splits[s], cls);
            make_dir(p);
            int n = s == 0 ? PER_CLASS : VAL_PER_CLASS;
            for (int k = 0; k < n; k++) {
                int w = sizes[(k + cls) % 6][0], h = sizes[(k + cls) % 6][1];
                uint8_t *rgb = malloc((size_t)(w * h * 3));
                paint(rgb, w, h, cls, k);
                snprintf(p, sizeof p, "%s/%s/n%08d/img_%d.JPEG", dir, splits[s], cls, k);
                write_jpeg(p, rgb, w, h, k == 1 ? 1 : (k == 3 && cls == 0) ? 2 : 0, 90);
                free(rgb);
            }
        }
    }
    /* a truncated JPEG and a PNG named .JPEG, in train class 1 and 2 */
    snprintf(p, sizeof p, "%s/train/n%08d/img_%d.JPEG", dir, 1, 2);
    struct stat st;
    stat(p, &st);
    if (truncate(p, st.st_size * 6 / 10)) {
        perror(p);
        exit(99);
    }
    snprintf(p, sizeof p, "%s/train/n%08d/not_a_jpeg.JPEG", dir, 2);
    FILE *f = fopen(p, "wb");
    static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13};
    fwrite(png, 1, sizeof png, f);
    fclose(f);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*len);
    if (fread(b, 1, *len, f) != *len)
        *len = 0;
    fclose(f);
    return b;
}

typedef struct fixed_box {
    data_box box;
} fixed_box;

static void use_box(void *arg, int64_t w, int64_t h, data_box *box)
{
    *box = ((fixed_box *)arg)->box;
}

static const float unit_scale[3] = {1, 1, 1}, zero_shift[3] = {0, 0, 0};

static void decoding(const char *tmp)
{
    char p[PATH_LEN];
    const int w = 300, h = 220;
    uint8_t *rgb = malloc((size_t)(w * h * 3));
    paint(rgb, w, h, 2, 5);
    snprintf(p, sizeof p, "%s/q98.jpg", tmp);
    write_jpeg(p, rgb, w, h, 0, 98);
    size_t len;
    uint8_t *buf = slurp(p, &len);
    data_scratch s = {0};
    data_region r;
    char why[256] = "";
    fixed_box whole = {{0, 0, w, h}};
    int rc = data_jpeg_decode(buf, len, w, h, use_box, &whole, &s, &r, why, sizeof why);
    double err = 0;
    float *out = malloc(sizeof(float) * (size_t)(w * h * 3));
    if (rc == 0) {
        data_resample_chw(&r, w, h, 0, unit_scale, zero_shift, &s, out);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int c = 0; c < 3; c++)
                    err += fabs(out[c * w * h + y * w + x] - rgb[(y * w + x) * 3 + c]);
        err /= (double)(w * h * 3);
    }
    tap_ok(rc == 0 && r.w == w && r.h == h && err < 3.0,
           "a 300x220 JPEG (quality 98) decodes to its picture: mean |error| %.2f of 255", err);

    /* a 64x64 output of a 200x160 box: DCT scale 3/8 and cropped rows and
     * columns, against the same box of a full-size decode */
    fixed_box part = {{70, 40, 200, 160}};
    float *a = malloc(sizeof(float) * 64 * 64 * 3), *b = malloc(sizeof(float) * 64 * 64 * 3);
    rc = data_jpeg_decode(buf, len, 64, 64, use_box, &part, &s, &r, why, sizeof why);
    int64_t scaled_w = r.w;
    data_resample_chw(&r, 64, 64, 0, unit_scale, zero_shift, &s, a);
    data_scratch s2 = {0};
    rc |= data_jpeg_decode(buf, len, w, h, use_box, &part, &s2, &r, why, sizeof why);
    data_resample_chw(&r, 64, 64, 0, unit_scale, zero_shift, &s2, b);
    double diff = 0;
    for (int k = 0; k < 64 * 64 * 3; k++)
        diff = fmax(diff, fabs(a[k] - b[k]));
    tap_ok(rc == 0 && scaled_w < 200 && diff < 12.0,
           "downscaled cropped decode (%lld columns decoded) = full decode of the box: max |diff| "
           "%.1f of 255", (long long)scaled_w, diff);
    double mean_a = 0, mean_b = 0;
    for (int k = 0; k < 64 * 64 * 3; k++)
        mean_a += a[k], mean_b += b[k];
    tap_ok(fabs(mean_a - mean_b) / (64 * 64 * 3) < 1.0, "... and the same mean (%.2f, %.2f)",
           mean_a / (64 * 64 * 3), mean_b / (64 * 64 * 3));
    /* flip mirrors */
    data_resample_chw(&r, 64, 64, 1, unit_scale, zero_shift, &s2, a);
    int mirrored = 1;
    for (int y = 0; y < 64; y++)
        for (int x = 0; x < 64; x++)
            mirrored &= a[y * 64 + x] == b[y * 64 + 63 - x];
    tap_ok(mirrored, "a flip mirrors the output");
    free(a);
    free(b);
    free(buf);

    /* greyscale and CMYK come out as RGB */
    snprintf(p, sizeof p, "%s/grey.jpg", tmp);
    write_jpeg(p, rgb, w, h, 1, 95);
    buf = slurp(p, &len);
    rc = data_jpeg_decode(buf, len, w, h, use_box, &whole, &s, &r, why, sizeof why);
    int grey = rc == 0 && r.comps == 3;
    for (int64_t k = 0; grey && k < (int64_t)w * h; k++)
        grey = r.pix[k * 3] == r.pix[k * 3 + 1] && r.pix[k * 3] == r.pix[k * 3 + 2];
    tap_ok(grey, "a greyscale JPEG decodes to three equal channels");
    free(buf);
    snprintf(p, sizeof p, "%s/cmyk.jpg", tmp);
    write_jpeg(p, rgb, w, h, 2, 98);
    buf = slurp(p, &len);
    rc = data_jpeg_decode(buf, len, w, h, use_box, &whole, &s, &r, why, sizeof why);
    err = 0;
    if (rc == 0) {
        data_resample_chw(&r, w, h, 0, unit_scale, zero_shift, &s, out);
        for (int k = 0; k < w * h; k++)
            for (int c = 0; c < 3; c++)
                err += fabs(out[c * w * h + k] - rgb[k * 3 + c]);
        err /= (double)(w * h * 3);
    }
    tap_ok(rc == 0 && err < 4.0, "an Adobe CMYK JPEG decodes to its RGB picture: mean |error| %.2f",
           err);
    free(buf);

    /* bad files */
    snprintf(p, sizeof p, "%s/q98.jpg", tmp);
    buf = slurp(p, &len);
    rc = data_jpeg_decode(buf, len * 6 / 10, 64, 64, use_box, &part, &s, &r, why, sizeof why);
    tap_ok(rc == -1 && strstr(why, "Premature end"), "a truncated JPEG is refused even when the "
           "crop lies in the part that is there: %s", why);
    rc = data_jpeg_decode((const uint8_t *)"\x89PNG\r\n\x1a\n-not-a-jpeg", 19, 64, 64, use_box,
                          &part, &s, &r, why, sizeof why);
    tap_ok(rc == -1 && strstr(why, "Not a JPEG"), "a PNG is refused: %s", why);
    free(buf);
    free(out);
    free(rgb);
    data_scratch_free(&s);
    data_scratch_free(&s2);
}

static void boxes(void)
{
    const int n = 20000, w = 500, h = 375;
    int flips = 0, in_range = 0, fallback = 0;
    double min_scale = 1, max_scale = 0, sum_scale = 0;
    for (int k = 0; k < n; k++) {
        data_box b;
        int flip;
        data_random_crop(data_hash3(7, 0, (uint64_t)k), w, h, 0.08, &b, &flip);
        flips += flip;
        double scale = b.w * b.h / (w * h), ratio = b.w / b.h;
        int inside = b.x >= 0 && b.y >= 0 && b.x + b.w <= w && b.y + b.h <= h;
        /* rounding the sides to pixels moves scale and ratio a little */
        if (inside && scale >= 0.08 * 0.97 && scale <= 1.0 && ratio >= 0.75 * 0.98 &&
            ratio <= 4.0 / 3.0 * 1.02)
            in_range++;
        fallback += b.w == w * 1.0 && b.h == h * 1.0;
        min_scale = fmin(min_scale, scale);
        max_scale = fmax(max_scale, scale);
        sum_scale += scale;
    }
    tap_ok(in_range == n, "random-resized-crop: %d of %d boxes inside the image with scale in "
           "0.08..1 and aspect in 3/4..4/3", in_range, n);
    tap_ok(min_scale < 0.09 && max_scale > 0.9 && fabs(sum_scale / n - 0.5) < 0.08,
           "... scales span the range: min %.3f, max %.3f, mean %.3f", min_scale, max_scale,
           sum_scale / n);
    tap_ok(fabs((double)flips / n - 0.5) < 0.02, "flips: %.4f of the samples (0.5 +- 0.02)",
           (double)flips / n);
    tap_ok(fallback < n / 50, "the whole-image fallback is rare (%d)", fallback);
    /* data.crop_min_scale = 0.2 (the authors' MobileNetV2 and supernet) */
    double min02 = 1, sum02 = 0;
    for (int k = 0; k < n; k++) {
        data_box b;
        int flip;
        data_random_crop(data_hash3(7, 0, (uint64_t)k), w, h, 0.2, &b, &flip);
        double scale = b.w * b.h / (w * h);
        min02 = fmin(min02, scale);
        sum02 += scale;
    }
    /* (large boxes fail the aspect test more often and are drawn again, so
     * both means sit below the uniform ones, 0.54 and 0.6) */
    tap_ok(min02 >= 0.2 * 0.97 && min02 < 0.22 && sum02 / n > sum_scale / n + 0.03,
           "crop_min_scale 0.2: scales from %.3f (0.08: from %.3f), mean %.3f (0.08: %.3f)", min02,
           min_scale, sum02 / n, sum_scale / n);
    data_box c;
    data_center_crop(w, h, 224, &c);
    tap_ok(fabs(c.w - 375.0 * 224 / 256) < 1e-9 && fabs(c.x - (w - c.w) / 2) < 1e-9 &&
               fabs(c.y - (h - c.h) / 2) < 1e-9,
           "evaluation box: shorter side to 256, center 224 (side %.3f at %.2f,%.2f)", c.w, c.x,
           c.y);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

extern void __lsan_disable(void) __attribute__((weak));

static void expect_exit(const dnal_data_cfg *cfg, const char *tmp, const char *needle,
                        const char *what)
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
        dnal_dataset_close(dnal_dataset_open(cfg, DNAL_SPLIT_TRAIN));
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
    tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 2 && strstr(msg, needle),
           "%s: exit 2 naming %s", what, needle);
    tap_diag("%s", msg);
}

static void datasets(const char *tmp)
{
    char tree[PATH_LEN], shards[PATH_LEN - 100];
    snprintf(tree, sizeof tree, "%s/imagenet", tmp);
    snprintf(shards, sizeof shards, "%s/shards", tmp);
    make_tree(tree);
    dnal_data_cfg cfg = {.name = "imagenet", .path = tree, .image_size = 32, .augment = 1,
                         .seed = 3};
    dnal_dataset *d = dnal_dataset_open(&cfg, DNAL_SPLIT_TRAIN);
    int64_t n = dnal_dataset_size(d), c, hh, ww;
    dnal_dataset_shape(d, &c, &hh, &ww);
    tap_ok(n == CLASSES * PER_CLASS + 1 && dnal_dataset_classes(d) == CLASSES && c == 3 &&
               hh == 32 && ww == 32 && dnal_dataset_streamed(d),
           "imagenet folders: %lld files, %lld classes, 3x32x32 samples", (long long)n,
           (long long)dnal_dataset_classes(d));
    float *a = malloc(sizeof(float) * (size_t)(n * 3 * 32 * 32));
    float *b = malloc(sizeof(float) * (size_t)(n * 3 * 32 * 32));
    int32_t *la = malloc(sizeof(int32_t) * (size_t)n), *lb = malloc(sizeof(int32_t) * (size_t)n);
    int64_t *order = malloc(sizeof(int64_t) * (size_t)n);
    dnal_epoch_order(3, 1, n, order);
    fprintf(stderr, "# the two bad files are named next:\n");
    dnal_batch_fill(d, order, 1, 0, n, a, la);
    int labels_ok = 1, finite = 1;
    for (int64_t k = 0; k < n; k++)
        labels_ok &= la[k] >= 0 && la[k] < CLASSES;
    for (int64_t k = 0; k < n * 3 * 32 * 32; k++)
        finite &= isfinite(a[k]) && fabsf(a[k]) < 3.0f;
    tap_ok(dnal_dataset_skipped(d) == 2 && labels_ok && finite,
           "a batch of every sample: the truncated file and the PNG skipped and counted (%lld), "
           "labels and values in range",
           (long long)dnal_dataset_skipped(d));
    /* the class order is round robin: sample k has class k % 4 (first rows) */
    dnal_batch_fill(d, NULL, 0, 0, 8, b, lb);
    tap_ok(lb[0] == 0 && lb[1] == 1 && lb[2] == 2 && lb[3] == 3 && lb[4] == 0,
           "samples go round robin over the classes (%d %d %d %d %d)", lb[0], lb[1], lb[2], lb[3],
           lb[4]);

    /* the loader gives what dnal_batch_fill gives */
    dnal_loader *l = dnal_loader_open(d, 2, 2, 8);
    int same = 1;
    int64_t rows[4] = {8, 8, 8, n - 24}; /* the last batch is short */
    dnal_loader_push(l, 1, order, 8);
    dnal_loader_push(l, 1, order + 8, 8);
    for (int bt = 0; bt < 4; bt++) {
        int64_t got = dnal_loader_pop(l, b, lb);
        same &= got == rows[bt] &&
                !memcmp(b, a + bt * 8 * 3 * 32 * 32, sizeof(float) * (size_t)(got * 3 * 32 * 32)) &&
                !memcmp(lb, la + bt * 8, sizeof(int32_t) * (size_t)got);
        if (bt + 2 < 4)
            dnal_loader_push(l, 1, order + (bt + 2) * 8, rows[bt + 2]);
    }
    dnal_loader_close(l);
    tap_ok(same, "the loader (2 workers, 2 batches ahead) returns exactly dnal_batch_fill's "
           "batches");
    dnal_dataset_close(d);

    /* evaluation split: center crops, no randomness */
    cfg.augment = 1;
    d = dnal_dataset_open(&cfg, DNAL_SPLIT_TEST);
    dnal_batch_fill(d, NULL, 0, 0, 4, a, la);
    dnal_batch_fill(d, NULL, 5, 0, 4, b, lb);
    tap_ok(dnal_dataset_size(d) == CLASSES * VAL_PER_CLASS &&
               !memcmp(a, b, sizeof(float) * 4 * 3 * 32 * 32),
           "val split: %lld samples, the same pixels in every epoch", (long long)dnal_dataset_size(d));
    dnal_dataset_close(d);

    /* prep and the shards */
    fprintf(stderr, "# prep names the two bad files next:\n");
    dnal_prep_stats st = dnal_prep_imagenet(tree, shards, "train", 40, 10, 0, 1, 0);
    dnal_prep_stats sv = dnal_prep_imagenet(tree, shards, "val", 40, 10, 0, 1, 0);
    char p[PATH_LEN];
    int names = 1;
    for (int k = 0; k < 3; k += 2) { /* the bad files are samples 5 and 22: shards 0 and 2 */
        snprintf(p, sizeof p, "%s/train-%05d.skipped", shards, k);
        size_t len = 0;
        char *listed = (char *)slurp(p, &len);
        names &= listed && len && strstr(listed, k ? "not_a_jpeg.JPEG" : "img_2.JPEG");
        free(listed);
    }
    tap_ok(st.images == n - 2 && st.skipped == 2 && st.shards == 3 && sv.images == 8 && names,
           "prep: %lld train images in %lld shards, %lld skipped and listed in "
           "train-00000.skipped and train-00002.skipped; %lld val", (long long)st.images,
           (long long)st.shards, (long long)st.skipped, (long long)sv.images);
    dnal_data_cfg sc = {.name = "imagenet-shards", .path = shards, .image_size = 32, .augment = 0,
                        .seed = 3};
    d = dnal_dataset_open(&sc, DNAL_SPLIT_TRAIN);
    dnal_batch_fill(d, NULL, 0, 0, dnal_dataset_size(d), a, la);
    int in_order = 1;
    for (int k = 0; k < 5; k++)
        in_order &= la[k] == k % CLASSES;
    tap_ok(dnal_dataset_size(d) == n - 2 && dnal_dataset_classes(d) == CLASSES && in_order &&
               dnal_dataset_skipped(d) == 0,
           "imagenet-shards: %lld samples, %lld classes, the folders' order",
           (long long)dnal_dataset_size(d), (long long)dnal_dataset_classes(d));
    dnal_dataset_close(d);
    /* the shard's evaluation view against the folder's: same picture, resampled twice */
    dnal_data_cfg fc = cfg;
    fc.augment = 0;
    dnal_dataset *df = dnal_dataset_open(&fc, DNAL_SPLIT_TEST);
    dnal_dataset *ds = dnal_dataset_open(&sc, DNAL_SPLIT_TEST);
    dnal_batch_fill(df, NULL, 0, 0, 8, a, la);
    dnal_batch_fill(ds, NULL, 0, 0, 8, b, lb);
    double diff = 0;
    for (int k = 0; k < 8 * 3 * 32 * 32; k++)
        diff += fabs(a[k] - b[k]);
    diff /= 8 * 3 * 32 * 32;
    tap_ok(!memcmp(la, lb, sizeof(int32_t) * 8) && diff < 0.1,
           "val from shards = val from folders: same labels, mean |diff| %.4f (normalised)", diff);
    dnal_dataset_close(df);
    dnal_dataset_close(ds);

    /* bad shards */
    snprintf(p, sizeof p, "%s/train-00000.dnshard", shards);
    struct stat sb;
    stat(p, &sb);
    if (truncate(p, sb.st_size - 100))
        perror(p);
    expect_exit(&sc, tmp, "train-00000.dnshard", "a truncated shard");
    FILE *f = fopen(p, "r+b");
    fwrite("NOTASHRD", 1, 8, f);
    fclose(f);
    expect_exit(&sc, tmp, "not a dnal shard", "a shard with a bad magic");
    dnal_data_cfg none = {.name = "imagenet", .path = tmp, .image_size = 32};
    expect_exit(&none, tmp, "/train", "a folder without train/");
    free(a);
    free(b);
    free(la);
    free(lb);
    free(order);
}

/* n photo-sized pictures (500x375, textured like a photograph, quality 90,
 * ImageNet's typical size and file size) in DIR/train/<class>/, for timing
 * the decoding (jobs/bench/decode-speed.sh) */
static void make_bench_tree(const char *dir, int n)
{
    char p[PATH_LEN];
    const int w = 500, h = 375;
    uint8_t *rgb = malloc((size_t)(w * h * 3));
    make_dir(dir);
    snprintf(p, sizeof p, "%s/train", dir);
    make_dir(p);
    for (int cls = 0; cls < CLASSES; cls++) {
        snprintf(p, sizeof p, "%s/train/n%08d", dir, cls);
        make_dir(p);
    }
    for (int k = 0; k < n; k++) {
        paint(rgb, w, h, k % CLASSES, k);
        for (int q = 0; q < w * h * 3; q++) { /* fine texture: what makes photos costly */
            int v = rgb[q] + (int)(data_hash3(11, (uint64_t)k, (uint64_t)q) % 61) - 30;
            rgb[q] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
        snprintf(p, sizeof p, "%s/train/n%08d/photo_%d.JPEG", dir, k % CLASSES, k);
        write_jpeg(p, rgb, w, h, 0, 90);
    }
    free(rgb);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--make-tree")) {
        make_tree(argv[2]);
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "--make-bench-tree")) {
        make_bench_tree(argv[2], atoi(argv[3]));
        return 0;
    }
    char tmp[] = "/tmp/dnal-test-imagenet-XXXXXX";
    if (!mkdtemp(tmp))
        return 99;
    decoding(tmp);
    boxes();
    datasets(tmp);
    nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return tap_done();
}
