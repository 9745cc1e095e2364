/* dnal info: what this build and this machine offer. */
#include <stdio.h>
#include <string.h>

#include <gsl/gsl_version.h>
#include <hdf5.h>
#include <mpi.h>
#include <omp.h>

#include "config.h"
#include "cli_internal.h"
#include "dnal/cli.h"
#include "dnal/core.h"
#include "dnal/models.h"
#include "dnal/search.h"

/* dnal info -c FILE | --set model.*=...: the model's plan (its layers, gates, FLOPs and
 * parameters) at the input of the model (onnx: the file's; a zoo model: the one it was
 * published for, or data.image_size), without starting MPI */
static int print_plan(int argc, char **argv)
{
    dnal_config cfg;
    int npos = 0, rc = cli_config("info", argc, argv, &cfg, &npos, 0, NULL);
    if (rc)
        return rc;
    const dnal_model_spec *spec = dnal_model_get(cfg.model.name);
    dnal_model_cfg m = dnal_model_config(
        &cfg, 1, spec->in_channels, cfg.data.image_size ? cfg.data.image_size : spec->image_size,
        spec->classes);
    dnal_ctx *ctx = dnal_ctx_create();
    dnal_model_plan(ctx, &m, stdout);
    dnal_ctx_destroy(ctx);
    return DNAL_EXIT_OK;
}

int dnal_cmd_info(int argc, char **argv)
{
    if (argc > 1)
        return print_plan(argc, argv);
    MPI_CHECK(MPI_Init(NULL, NULL));
    int rank = 0, size = 1, len = 0, major = 0, minor = 0;
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size));
    MPI_CHECK(MPI_Get_library_version(lib, &len));
    MPI_CHECK(MPI_Get_version(&major, &minor));
    char *nl = strchr(lib, '\n');
    if (nl)
        *nl = '\0';
    char *comma = strchr(lib, ',');
    if (comma) /* Open MPI appends the package and its date */
        *comma = '\0';

    if (rank == 0) {
        const dnnl_version_t *v = dnnl_version();
        unsigned h5maj = 0, h5min = 0, h5rel = 0;
        H5get_libversion(&h5maj, &h5min, &h5rel);
        printf("dnal_version=%s\n", PACKAGE_VERSION);
        printf("onednn_version=%d.%d.%d\n", v->major, v->minor, v->patch);
        printf("onednn_cpu_runtime=%s\n", v->cpu_runtime == DNNL_RUNTIME_OMP ? "openmp" : "other");
        printf("onednn_isa=%s\n", dnal_isa_name());
        /* native: avx512_core_bf16 or avx512_core_amx; emulated: avx512_core */
        static const char *bf16[] = {"none", "emulated", "native"};
        dnal_ctx *ctx = dnal_ctx_create();
        printf("bf16=%s\n", bf16[dnal_bf16_supported(ctx)]);
        /* what prune.channel_multiple=auto rounds to: the block of the layout
         * oneDNN's convolutions pick here (a network that runs channels last
         * instead says so in its prune line) */
        char layout[32];
        printf("conv_layout=%s channel_block=%lld\n",
               dnal_md_layout_str(&ctx->conv_layout, layout, sizeof layout),
               (long long)dnal_layout_channel_block(&ctx->conv_layout));
        dnal_ctx_destroy(ctx);
        printf("omp_threads=%d\n", omp_get_max_threads());
        printf("mpi_library=%s\n", lib);
        printf("mpi_standard=%d.%d\n", major, minor);
        printf("mpi_world_size=%d\n", size);
        printf("hdf5_version=%u.%u.%u\n", h5maj, h5min, h5rel);
        printf("gsl_version=%s\n", GSL_VERSION);
    }
    MPI_CHECK(MPI_Finalize());
    return DNAL_EXIT_OK;
}
