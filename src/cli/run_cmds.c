/* dnal search (all stages of run.stages; no config file = the built-in
 * default run) and dnal train (the pretrain stage alone, gates off, the
 * same keys): a run from its configuration or from --resume. */
#include <stdio.h>

#include <mpi.h>

#include "cli_internal.h"
#include "dnal/cli.h"
#include "dnal/search.h"

/* stages: run.stages as given (NULL) or replaced */
static int run_command(const char *cmd, int argc, char **argv, const char *stages)
{
    dnal_stop_install(); /* a signal from here on checkpoints or exits 75, never kills */
    dnal_config cfg;
    char resume[DNAL_PATH_MAX + 300];
    int rc = cli_run_config(cmd, argc, argv, &cfg, resume, sizeof resume);
    if (rc)
        return rc;
    if (stages)
        snprintf(cfg.run.stages, sizeof cfg.run.stages, "%s", stages);
    cli_mpi_start();
    cli_print_config(cmd, &cfg);
    dnal_run *r = dnal_run_open(&cfg, MPI_COMM_WORLD);
    dnal_run_start(r, resume[0] ? resume : NULL);
    dnal_run_stages(r);
    dnal_run_close(r);
    MPI_Finalize();
    return DNAL_EXIT_OK;
}

int dnal_cmd_search(int argc, char **argv)
{
    return run_command("search", argc, argv, NULL);
}

int dnal_cmd_train(int argc, char **argv)
{
    return run_command("train", argc, argv, "pretrain");
}
