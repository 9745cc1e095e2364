/* JPEG decoding (libjpeg-turbo) of just the part of an image a crop needs,
 * and antialiased resampling of a crop box to the network's input.
 *
 * Decoding cost is cut three ways: DCT-domain downscaling (scale_num/8, the
 * smallest factor that still leaves the box at least as large as the
 * output, so no detail the output could show is lost), jpeg_crop_scanline
 * for the columns and jpeg_skip_scanlines for the rows outside the box
 * (those rows are still entropy-decoded, so a truncated file is always
 * noticed, wherever the crop lies).
 *
 * A file is bad when libjpeg fails (not a JPEG, unsupported, corrupt
 * header) or warns that image data is missing or damaged (premature end,
 * a marker inside the data, a bad Huffman code): such a sample would be
 * grey or garbled. Warnings about extraneous bytes are harmless and
 * ignored, as PIL ignores them. */
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

#include "internal.h"

typedef struct jpeg_failure {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    int damaged;          /* a warning that the image data is incomplete */
    char why[JMSG_LENGTH_MAX];
} jpeg_failure;

static void on_error(j_common_ptr c)
{
    jpeg_failure *f = (jpeg_failure *)c->err;
    c->err->format_message(c, f->why);
    longjmp(f->jump, 1);
}

static void on_message(j_common_ptr c, int level)
{
    if (level >= 0) /* trace messages */
        return;
    jpeg_failure *f = (jpeg_failure *)c->err;
    switch (c->err->msg_code) {
    case JWRN_JPEG_EOF:
    case JWRN_HIT_MARKER:
    case JWRN_MUST_RESYNC:
    case JWRN_NOT_SEQUENTIAL:
    case JWRN_HUFF_BAD_CODE:
        if (!f->damaged)
            c->err->format_message(c, f->why);
        f->damaged = 1;
        break;
    default:
        break;
    }
    c->err->num_warnings++;
}

void *data_grow(void *p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return p;
    size_t n = *cap ? *cap : 4096;
    while (n < need)
        n *= 2;
    free(p);
    p = dnal_alloc(n);
    *cap = n;
    return p;
}

void data_scratch_free(data_scratch *s)
{
    void *owned[] = {s->file, s->pix, s->tmp, s->taps};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
        free(owned[i]);
    memset(s, 0, sizeof *s);
}

/* the smallest scale n/8 that keeps a box of bw x bh at least out_w x out_h */
static int dct_scale(double bw, double bh, int64_t out_w, int64_t out_h)
{
    for (int n = 1; n < 8; n++)
        if (bw * n / 8.0 >= (double)out_w && bh * n / 8.0 >= (double)out_h)
            return n;
    return 8;
}

/* CMYK as libjpeg returns it (Adobe files store inverted ink) to RGB */
static void cmyk_to_rgb(uint8_t *row, int64_t w, int inverted)
{
    for (int64_t x = 0; x < w; x++) {
        int c = row[4 * x], m = row[4 * x + 1], y = row[4 * x + 2], k = row[4 * x + 3];
        if (!inverted) {
            c = 255 - c, m = 255 - m, y = 255 - y, k = 255 - k;
        }
        row[3 * x] = (uint8_t)(c * k / 255);
        row[3 * x + 1] = (uint8_t)(m * k / 255);
        row[3 * x + 2] = (uint8_t)(y * k / 255);
    }
}

int data_jpeg_decode(const uint8_t *buf, size_t len, int64_t out_w, int64_t out_h,
                     data_box_fn choose, void *arg, data_scratch *s, data_region *out,
                     char *why, size_t why_len)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_failure fail = {0};
    cinfo.err = jpeg_std_error(&fail.mgr);
    fail.mgr.error_exit = on_error;
    fail.mgr.emit_message = on_message;
    jpeg_create_decompress(&cinfo);
    if (setjmp(fail.jump)) {
        snprintf(why, why_len, "%s", fail.why);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    const int64_t max_pixels = s->max_pixels > 0 ? s->max_pixels : DNAL_DATA_MAX_PIXELS_DEFAULT;
    /* 2-byte coefficients of up to 4 components, plus row buffers: what a
     * progressive image of max_pixels needs, and a hard ceiling if a header
     * slips by the check below */
    cinfo.mem->max_memory_to_use = (long)(max_pixels * 8 + (64l << 20));
    jpeg_mem_src(&cinfo, buf, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    const int64_t W = cinfo.image_width, H = cinfo.image_height;
    if (W * H > max_pixels) {
        snprintf(why, why_len, "the header declares %lldx%lld pixels, more than data.max_pixels = "
                 "%lld", (long long)W, (long long)H, (long long)max_pixels);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    data_box box;
    choose(arg, W, H, &box);
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB; /* greyscale is expanded to RGB */
    cinfo.scale_num = (unsigned)dct_scale(box.w, box.h, out_w, out_h);
    cinfo.scale_denom = 8;
    jpeg_start_decompress(&cinfo);
    const int64_t OW = cinfo.output_width, OH = cinfo.output_height;
    const double fx = (double)OW / (double)W, fy = (double)OH / (double)H;

    /* the box at the decoded scale, with a margin for the filter's taps */
    const double bx = box.x * fx, by = box.y * fy, bw = box.w * fx, bh = box.h * fy;
    const int64_t margin = 2 + (int64_t)ceil(fmax(bw / (double)out_w, bh / (double)out_h));
    int64_t x0 = (int64_t)floor(bx) - margin, x1 = (int64_t)ceil(bx + bw) + margin;
    int64_t y0 = (int64_t)floor(by) - margin, y1 = (int64_t)ceil(by + bh) + margin;
    x0 = x0 < 0 ? 0 : x0, y0 = y0 < 0 ? 0 : y0;
    x1 = x1 > OW ? OW : x1, y1 = y1 > OH ? OH : y1;
    JDIMENSION xoff = (JDIMENSION)x0, cw = (JDIMENSION)(x1 - x0);
    if (cw < (JDIMENSION)OW)
        jpeg_crop_scanline(&cinfo, &xoff, &cw); /* xoff moves down to an iMCU edge */
    const int comps = cinfo.output_components; /* 3, or 4 for CMYK */
    const size_t stride = (size_t)cw * (size_t)comps;
    s->pix = data_grow(s->pix, &s->pix_cap, stride * (size_t)(y1 - y0));
    if (y0 > 0)
        jpeg_skip_scanlines(&cinfo, (JDIMENSION)y0);
    for (int64_t y = y0; y < y1;) {
        JSAMPROW row = s->pix + (size_t)(y - y0) * stride;
        y += jpeg_read_scanlines(&cinfo, &row, 1);
    }
    if (y1 < OH)
        jpeg_skip_scanlines(&cinfo, (JDIMENSION)(OH - y1));
    jpeg_finish_decompress(&cinfo);
    int inverted = cinfo.saw_Adobe_marker;
    jpeg_destroy_decompress(&cinfo);
    if (fail.damaged) {
        snprintf(why, why_len, "damaged image data (%s)", fail.why);
        return -1;
    }
    if (comps == 4)
        for (int64_t y = 0; y < y1 - y0; y++)
            cmyk_to_rgb(s->pix + (size_t)y * stride, cw, inverted);
    *out = (data_region){.pix = s->pix, .w = cw, .h = y1 - y0, .stride = (int64_t)stride,
                         .comps = comps == 4 ? 3 : comps,
                         .box = {bx - (double)xoff, by - (double)y0, bw, bh}};
    return 0; /* CMYK rows were packed to 3 bytes a pixel in place; stride stays */
}

/* ------------------------------------------------------------ resampling */

/* Taps of a triangle filter stretched by the downscale factor (PIL's and
 * torchvision's antialiased bilinear): output i of n reads inputs
 * first[i] .. first[i]+count[i]-1 of [0, in) with the given weights. */
typedef struct taps {
    int64_t n, width;  /* outputs, taps per output (max) */
    int64_t *first, *count;
    float *w;          /* n x width */
} taps;

static void make_taps(taps *t, double start, double len, int64_t n, int64_t in)
{
    const double scale = len / (double)n, support = scale > 1.0 ? scale : 1.0;
    for (int64_t i = 0; i < n; i++) {
        const double center = start + ((double)i + 0.5) * scale;
        int64_t lo = (int64_t)floor(center - support), hi = (int64_t)ceil(center + support);
        lo = lo < 0 ? 0 : lo;
        hi = hi > in ? in : hi;
        double sum = 0;
        float *w = t->w + i * t->width;
        int64_t k = 0;
        for (int64_t j = lo; j < hi && k < t->width; j++, k++) {
            double d = fabs(((double)j + 0.5 - center) / support);
            w[k] = (float)(d < 1.0 ? 1.0 - d : 0.0);
            sum += w[k];
        }
        if (sum <= 0) { /* the box lies outside the decoded pixels: nearest edge */
            lo = center < 0 ? 0 : (center >= (double)in ? in - 1 : (int64_t)center);
            k = 1;
            w[0] = 1.0f;
            sum = 1.0;
        }
        for (int64_t q = 0; q < k; q++)
            w[q] = (float)(w[q] / sum);
        t->first[i] = lo;
        t->count[i] = k;
    }
}

static void taps_carve(data_scratch *s, taps *tx, taps *ty, const data_region *r, int64_t out_w,
                       int64_t out_h)
{
    tx->n = out_w, ty->n = out_h;
    tx->width = 2 * (int64_t)ceil(fmax(r->box.w / (double)out_w, 1.0)) + 3;
    ty->width = 2 * (int64_t)ceil(fmax(r->box.h / (double)out_h, 1.0)) + 3;
    size_t words = (size_t)(out_w * (tx->width + 2) + out_h * (ty->width + 2));
    s->taps = data_grow(s->taps, &s->taps_cap, words * sizeof(int64_t));
    int64_t *p = s->taps;
    tx->first = p, p += out_w;
    tx->count = p, p += out_w;
    ty->first = p, p += out_h;
    ty->count = p, p += out_h;
    tx->w = (float *)p;
    ty->w = tx->w + out_w * tx->width;
    make_taps(tx, r->box.x, r->box.w, out_w, r->w);
    make_taps(ty, r->box.y, r->box.h, out_h, r->h);
}

/* The box of region r resampled to out_h x out_w, channels last, floats
 * in 0..255, into s->tmp (returned). */
static float *resample(const data_region *r, int64_t out_w, int64_t out_h, data_scratch *s)
{
    taps tx, ty;
    taps_carve(s, &tx, &ty, r, out_w, out_h);
    const int64_t C = r->comps;
    /* rows the vertical pass reads */
    int64_t row_lo = ty.first[0], row_hi = ty.first[out_h - 1] + ty.count[out_h - 1];
    for (int64_t i = 0; i < out_h; i++) {
        row_lo = ty.first[i] < row_lo ? ty.first[i] : row_lo;
        row_hi = ty.first[i] + ty.count[i] > row_hi ? ty.first[i] + ty.count[i] : row_hi;
    }
    const size_t horiz = (size_t)((row_hi - row_lo) * out_w * C), final = (size_t)(out_h * out_w * C);
    s->tmp = data_grow(s->tmp, &s->tmp_cap, (horiz + final) * sizeof(float));
    float *h = s->tmp, *o = s->tmp + horiz;
    for (int64_t y = row_lo; y < row_hi; y++) {
        const uint8_t *src = r->pix + y * r->stride;
        float *dst = h + (y - row_lo) * out_w * C;
        for (int64_t x = 0; x < out_w; x++) {
            const float *w = tx.w + x * tx.width;
            float acc[4] = {0, 0, 0, 0};
            const uint8_t *q = src + tx.first[x] * C;
            for (int64_t k = 0; k < tx.count[x]; k++, q += C)
                for (int64_t c = 0; c < C; c++)
                    acc[c] += w[k] * (float)q[c];
            for (int64_t c = 0; c < C; c++)
                dst[x * C + c] = acc[c];
        }
    }
    for (int64_t y = 0; y < out_h; y++) {
        const float *w = ty.w + y * ty.width;
        float *dst = o + y * out_w * C;
        for (int64_t x = 0; x < out_w * C; x++)
            dst[x] = 0;
        for (int64_t k = 0; k < ty.count[y]; k++) {
            const float *src = h + (ty.first[y] + k - row_lo) * out_w * C;
            for (int64_t x = 0; x < out_w * C; x++)
                dst[x] += w[k] * src[x];
        }
    }
    return o;
}

void data_resample_chw(const data_region *r, int64_t out_w, int64_t out_h, int flip,
                       const float *scale, const float *shift, data_scratch *s, float *chw)
{
    const float *o = resample(r, out_w, out_h, s);
    const int64_t C = r->comps, hw = out_h * out_w;
    for (int64_t y = 0; y < out_h; y++)
        for (int64_t x = 0; x < out_w; x++) {
            const float *p = o + (y * out_w + (flip ? out_w - 1 - x : x)) * C;
            for (int64_t c = 0; c < C; c++)
                chw[c * hw + y * out_w + x] = p[c] * scale[c] + shift[c];
        }
}

void data_resample_hwc8(const data_region *r, int64_t out_w, int64_t out_h, data_scratch *s,
                        uint8_t *hwc)
{
    const float *o = resample(r, out_w, out_h, s);
    const int64_t n = out_h * out_w * r->comps;
    for (int64_t k = 0; k < n; k++) {
        float v = o[k] + 0.5f;
        hwc[k] = (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v));
    }
}
