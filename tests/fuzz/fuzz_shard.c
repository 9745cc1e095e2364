/* The shard reader (imagenet-shards): the input is train-00000.dnshard;
 * its first and last samples are decoded. */
#include "fuzz.h"
#include "dnal/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    fuzz_write("train-00000.dnshard", data, size);
    int fds = fuzz_fd_base();
    if (setjmp(fuzz_jump) == 0) {
        dnal_data_cfg cfg = {.name = "imagenet-shards", .path = fuzz_dir, .image_size = 16,
                             .augment = 1};
        dnal_dataset *d = dnal_dataset_open(&cfg, DNAL_SPLIT_TRAIN);
        static float chw[3 * 16 * 16];
        int32_t label;
        dnal_dataset_get(d, 0, 0, chw, &label);
        dnal_dataset_get(d, 1, dnal_dataset_size(d) - 1, chw, &label);
        dnal_dataset_close(d);
    }
    fuzz_close_from(fds);
    return 0;
}
