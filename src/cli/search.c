/* dnal search: all stages of run.stages; no config file = the built-in default run. */
#include <stdio.h>

#include <mpi.h>

#include "cli_internal.h"
#include "dnal/cli.h"
#include "dnal/search.h"

int dnal_cmd_search(int argc, char **argv)
{
    dnal_config cfg;
    char resume[DNAL_PATH_MAX + 300];
    int rc = cli_run_config("search", argc, argv, &cfg, resume, sizeof resume);
    if (rc)
        return rc;
    cli_mpi_start();
    cli_print_config("search", &cfg);
    dnal_run *r = dnal_run_open(&cfg, MPI_COMM_WORLD);
    dnal_run_start(r, resume[0] ? resume : NULL);
    dnal_run_stages(r);
    dnal_run_close(r);
    MPI_Finalize();
    return DNAL_EXIT_OK;
}
