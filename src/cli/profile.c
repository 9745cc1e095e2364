/* dnal profile: the latency table of a run's dense model on this CPU
 * (docs/design.md, "Latency"). The model is the one the run would build:
 * model.name and model.width over data.dataset's images (their shape and
 * classes read from its train split). Each process measures at its share
 * of data.batch with run.threads; under mpirun every rank measures side by
 * side, as they share the machine in a run, and rank 0 writes the table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>
#include <omp.h>

#include "cli_internal.h"
#include "dnal/cli.h"
#include "dnal/data.h"
#include "dnal/dist.h"
#include "dnal/models.h"
#include "dnal/search.h"

/* takes -o FILE and --reps N out of argv */
static int profile_flags(int *argc, char **argv, const char **out, long *reps)
{
    int kept = 1;
    for (int i = 1; i < *argc; i++) {
        if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
            if (i + 1 >= *argc) {
                fprintf(stderr, "dnal profile: %s needs a file\n", argv[i]);
                return DNAL_EXIT_USAGE;
            }
            *out = argv[++i];
        } else if (!strcmp(argv[i], "--reps")) {
            char *end = NULL;
            if (i + 1 >= *argc || (*reps = strtol(argv[i + 1], &end, 10), *end != '\0') ||
                *reps < 1 || *reps > 1000) {
                fprintf(stderr, "dnal profile: --reps needs a count from 1 to 1000\n");
                return DNAL_EXIT_USAGE;
            }
            i++;
        } else {
            argv[kept++] = argv[i];
        }
    }
    *argc = kept;
    return 0;
}

int dnal_cmd_profile(int argc, char **argv)
{
    const char *out = NULL;
    long reps = 5;
    dnal_config cfg;
    int rc = profile_flags(&argc, argv, &out, &reps);
    if (rc || (rc = cli_config("profile", argc, argv, &cfg, NULL, 0, NULL)))
        return rc;
    if (!out)
        out = cfg.search.latency_table[0] ? cfg.search.latency_table : "latency.h5";
    dnal_set_threads(cfg.run.threads);
    cli_mpi_start();
    dnal_dist dist;
    dnal_dist_init(&dist, MPI_COMM_WORLD, 1, cfg.dist.bucket_kb);
    int64_t first, local;
    if (!dnal_dist_shard(cfg.data.batch, dist.rank, dist.size, &first, &local))
        dnal_fatal(DNAL_EXIT_USAGE, "data.batch=%lld does not split evenly over %d ranks",
                   (long long)cfg.data.batch, dist.size);
    /* the model a run of this configuration builds: the dataset's images */
    dnal_data_cfg dc = dnal_data_config(&cfg, DNAL_SPLIT_TRAIN);
    dnal_dataset *d = dnal_dataset_open(&dc, DNAL_SPLIT_TRAIN);
    dnal_model_get(cfg.model.name);
    dnal_model_cfg m = dnal_model_for_data(&cfg, local, d);
    dnal_dataset_close(d);

    dnal_ctx *ctx = dnal_ctx_create_for(cfg.run.dtype);
    double t0 = MPI_Wtime();
    dnal_latency *tab = dnal_profile(ctx, &m, cfg.run.seed, (int)reps, &dist, stdout);
    double seconds = MPI_Wtime() - t0;
    if (dist.rank == 0) {
        dnal_model_cfg one = m; /* the table's networks are bound at batch 1 */
        one.batch = 1;
        dnal_net *net = dnal_model_build(ctx, &one);
        dnal_latency_bind(tab, net, out);
        dnal_latency_save(out, tab, net, &one);
        dnal_net_destroy(net);
        printf("profile model=%s image_size=%lld batch=%lld ranks=%d threads=%lld isa=%s "
               "layout=%s block=%lld train_step_ms=%.3f infer_step_ms=%.4f seconds=%.1f "
               "path=%s\n",
               m.name, (long long)m.image_size, (long long)local, dist.size, (long long)tab->threads,
               tab->isa, tab->layout, (long long)tab->block, tab->step_ms[DNAL_LATENCY_TRAIN],
               tab->step_ms[DNAL_LATENCY_INFER], seconds, out);
    }
    dnal_latency_free(tab);
    dnal_dist_free(&dist);
    dnal_ctx_destroy(ctx);
    MPI_Finalize();
    return DNAL_EXIT_OK;
}
