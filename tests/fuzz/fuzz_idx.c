/* The IDX reader (Fashion-MNIST): input = u16 length of the images file,
 * the images file, then the labels file (plain, not gzipped: zlib reads
 * both alike). */
#include "fuzz.h"
#include "dnal/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    if (size < 2)
        return 0;
    size_t cut = (size_t)(data[0] | data[1] << 8);
    cut = cut > size - 2 ? size - 2 : cut;
    fuzz_write("train-images-idx3-ubyte", data + 2, cut);
    fuzz_write("train-labels-idx1-ubyte", data + 2 + cut, size - 2 - cut);
    int fds = fuzz_fd_base();
    if (setjmp(fuzz_jump) == 0) {
        dnal_data_cfg cfg = {.name = "fashion-mnist", .path = fuzz_dir, .augment = 1};
        dnal_dataset *d = dnal_dataset_open(&cfg, DNAL_SPLIT_TRAIN);
        float chw[28 * 28];
        int32_t label;
        if (dnal_dataset_size(d) > 0)
            dnal_dataset_get(d, 0, dnal_dataset_size(d) - 1, chw, &label);
        dnal_dataset_close(d);
    }
    fuzz_close_from(fds);
    return 0;
}
