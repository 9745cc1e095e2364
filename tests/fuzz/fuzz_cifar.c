/* The CIFAR-10 reader: the input is test_batch.bin. */
#include "fuzz.h"
#include "dnal/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    fuzz_write("test_batch.bin", data, size);
    int fds = fuzz_fd_base();
    if (setjmp(fuzz_jump) == 0) {
        dnal_data_cfg cfg = {.name = "cifar10", .path = fuzz_dir};
        dnal_dataset *d = dnal_dataset_open(&cfg, DNAL_SPLIT_TEST);
        static float chw[3 * 32 * 32];
        int32_t label;
        dnal_dataset_get(d, 0, dnal_dataset_size(d) - 1, chw, &label);
        dnal_dataset_close(d);
    }
    fuzz_close_from(fds);
    return 0;
}
