/* dnal prep imagenet SRC OUT [--size N] [--per-shard K]: the JPEG folders
 * SRC/train/<class>/ and SRC/val/<class>/ packed into shards (dataset
 * imagenet-shards). Under mpirun the ranks take the shards in turn. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <mpi.h>

#include "cli_internal.h"
#include "dnal/cli.h"
#include "dnal/data.h"

static int number(const char *opt, const char *v, long long lo, long long hi, long long *out)
{
    char *end;
    long long x = v ? strtoll(v, &end, 10) : 0;
    if (!v || *end || x < lo || x > hi) {
        fprintf(stderr, "dnal prep: %s needs a number in %lld..%lld\n", opt, lo, hi);
        return DNAL_EXIT_USAGE;
    }
    *out = x;
    return DNAL_EXIT_OK;
}

int dnal_cmd_prep(int argc, char **argv)
{
    const char *pos[3];
    int npos = 0;
    long long size = 256, per_shard = 5000, max_pixels = DNAL_DATA_MAX_PIXELS_DEFAULT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--max-pixels")) {
            int rc = number(a, i + 1 < argc ? argv[i + 1] : NULL, 1, 1ll << 40, &max_pixels);
            if (rc)
                return rc;
            i++;
        } else if (!strcmp(a, "--size") || !strcmp(a, "--per-shard")) {
            int rc = number(a, i + 1 < argc ? argv[i + 1] : NULL, a[2] == 's' ? 8 : 1,
                            a[2] == 's' ? 4096 : 1000000, a[2] == 's' ? &size : &per_shard);
            if (rc)
                return rc;
            i++;
        } else if (a[0] == '-') {
            fprintf(stderr, "dnal prep: unknown option '%s' (see dnal prep --help)\n", a);
            return DNAL_EXIT_USAGE;
        } else if (npos < 3) {
            pos[npos++] = a;
        } else {
            fprintf(stderr, "dnal prep: unexpected argument '%s'\n", a);
            return DNAL_EXIT_USAGE;
        }
    }
    if (npos != 3 || strcmp(pos[0], "imagenet")) {
        fprintf(stderr, "usage: dnal prep imagenet SRC_DIR OUT_DIR [--size N] [--per-shard K] "
                        "[--max-pixels P]\n");
        return DNAL_EXIT_USAGE;
    }
    int rank = cli_mpi_start(), size_world = 1;
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size_world));
    const char *splits[2] = {"train", "val"};
    for (int k = 0; k < 2; k++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", pos[1], splits[k]);
        struct stat st;
        if (k == 1 && stat(dir, &st) != 0) {
            printf("prep split=val: %s does not exist, skipped\n", dir);
            continue;
        }
        dnal_prep_stats s = dnal_prep_imagenet(pos[1], pos[2], splits[k], size, per_shard, rank,
                                               size_world, max_pixels);
        double sums[2] = {(double)s.images, (double)s.skipped};
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
        printf("prep split=%s images=%.0f skipped=%.0f shards=%lld size=%lld out=%s\n", splits[k],
               sums[0], sums[1], (long long)s.shards, size, pos[2]);
        fflush(stdout);
    }
    MPI_Finalize();
    return DNAL_EXIT_OK;
}
