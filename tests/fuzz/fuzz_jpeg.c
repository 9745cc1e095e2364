/* The JPEG decoder: header, declared size (data.max_pixels), crop and
 * resampling of whatever the input holds. */
#include "fuzz.h"
#include "../../src/data/internal.h"

static void whole(void *arg, int64_t w, int64_t h, data_box *box)
{
    (void)arg;
    *box = (data_box){0, 0, (double)w, (double)h};
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    data_scratch s = {.max_pixels = 1 << 22};
    data_region r;
    char why[256];
    if (data_jpeg_decode(data, size, 16, 16, whole, NULL, &s, &r, why, sizeof why) == 0) {
        static float chw[3 * 16 * 16];
        const float scale[3] = {1, 1, 1}, shift[3] = {0, 0, 0};
        data_resample_chw(&r, 16, 16, 1, scale, shift, &s, chw);
    }
    data_scratch_free(&s);
    return 0;
}
