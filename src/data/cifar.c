/* CIFAR-10, binary version: records of 1 label byte and 3072 pixel bytes
 * (1024 red, 1024 green, 1024 blue, each a row-major 32x32 plane), five
 * training files and one test file in one folder. The whole split is
 * loaded; every check names the file (and the record). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

enum {
    CIFAR_SIDE = 32,
    CIFAR_PIXELS = 3 * CIFAR_SIDE * CIFAR_SIDE,
    CIFAR_RECORD = 1 + CIFAR_PIXELS,
    CIFAR_CLASSES = 10,
    CIFAR_MAX_FILES = 5
};

static const char *const train_files[] = {"data_batch_1.bin", "data_batch_2.bin",
                                          "data_batch_3.bin", "data_batch_4.bin",
                                          "data_batch_5.bin"};
static const char *const test_files[] = {"test_batch.bin"};

/* Records in the file, checked from its size. */
static int64_t count_records(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        dnal_fatal(DNAL_EXIT_DATA, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        dnal_fatal(DNAL_EXIT_DATA, "%s: not a regular file", path);
    if (st.st_size <= 0 || st.st_size % CIFAR_RECORD != 0)
        dnal_fatal(DNAL_EXIT_DATA,
                   "%s: truncated or malformed: %lld bytes is not a multiple of %d-byte records",
                   path, (long long)st.st_size, CIFAR_RECORD);
    return st.st_size / CIFAR_RECORD;
}

/* Reads `records` records into the split's arrays starting at `first`. */
static void read_records(dnal_dataset *d, const char *path, int64_t first, int64_t records)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        dnal_fatal(DNAL_EXIT_DATA, "%s: cannot open: %s", path, strerror(errno));
    uint8_t record[CIFAR_RECORD];
    for (int64_t r = 0; r < records; r++) {
        if (fread(record, 1, CIFAR_RECORD, f) != CIFAR_RECORD)
            dnal_fatal(DNAL_EXIT_DATA, "%s: record %lld: %s", path, (long long)r,
                       ferror(f) ? strerror(errno) : "truncated (the file shrank while read)");
        if (record[0] >= CIFAR_CLASSES)
            dnal_fatal(DNAL_EXIT_DATA, "%s: record %lld: label %u is out of range (0..%d)", path,
                       (long long)r, (unsigned)record[0], CIFAR_CLASSES - 1);
        d->labels[first + r] = record[0];
        memcpy(d->pixels + (first + r) * CIFAR_PIXELS, record + 1, CIFAR_PIXELS);
    }
    fclose(f);
}

void data_cifar_load(dnal_dataset *d, const char *dir)
{
    const int train = d->split == DNAL_SPLIT_TRAIN;
    const char *const *names = train ? train_files : test_files;
    const int files = train ? 5 : 1;
    char *paths[CIFAR_MAX_FILES];
    int64_t records[CIFAR_MAX_FILES], total = 0;
    /* sizes first: a bad file is reported before anything is read */
    for (int k = 0; k < files; k++) {
        paths[k] = data_join(dir, names[k]);
        records[k] = count_records(paths[k]);
        total += records[k];
    }
    d->n = total;
    d->classes = CIFAR_CLASSES;
    d->c = 3;
    d->h = d->w = CIFAR_SIDE;
    d->pixels = dnal_alloc_input((size_t)total, CIFAR_PIXELS, 0, dir, "CIFAR-10 images");
    d->labels = dnal_alloc_input((size_t)total, 1, 0, dir, "CIFAR-10 labels");
    for (int64_t k = 0, first = 0; k < files; first += records[k], k++) {
        read_records(d, paths[k], first, records[k]);
        free(paths[k]);
    }
}
