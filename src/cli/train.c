/* dnal train: the pretrain stage alone (gates off), same config keys. */
#include <stdio.h>

#include <mpi.h>

#include "cli_internal.h"
#include "dnal/cli.h"
#include "dnal/search.h"

int dnal_cmd_train(int argc, char **argv)
{
    dnal_config cfg;
    char resume[DNAL_PATH_MAX + 300];
    int rc = cli_run_config("train", argc, argv, &cfg, resume, sizeof resume);
    if (rc)
        return rc;
    snprintf(cfg.run.stages, sizeof cfg.run.stages, "pretrain"); /* a run of one stage */
    cli_mpi_start();
    cli_print_config("train", &cfg);
    dnal_run *r = dnal_run_open(&cfg, MPI_COMM_WORLD);
    dnal_run_start(r, resume[0] ? resume : NULL);
    dnal_run_stages(r);
    dnal_run_close(r);
    MPI_Finalize();
    return DNAL_EXIT_OK;
}
