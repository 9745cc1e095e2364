/* The options every configurable subcommand shares: -c FILE and --set. */
#include <stdio.h>
#include <string.h>
#include <mpi.h>

#include "cli_internal.h"

int cli_config(const char *cmd, int argc, char **argv, dnal_config *cfg, int *positional,
               int max_positional, const char **pos)
{
    int npos = 0;
    dnal_config_defaults(cfg);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "dnal %s: %s needs a file\n", cmd, a);
                return DNAL_EXIT_USAGE;
            }
            if (dnal_config_load(cfg, argv[++i]))
                return DNAL_EXIT_USAGE;
        } else if (!strcmp(a, "--set")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "dnal %s: --set needs section.key=value\n", cmd);
                return DNAL_EXIT_USAGE;
            }
            if (dnal_config_set(cfg, argv[++i]))
                return DNAL_EXIT_USAGE;
        } else if (!strncmp(a, "--set=", 6)) {
            if (dnal_config_set(cfg, a + 6))
                return DNAL_EXIT_USAGE;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "dnal %s: unknown option '%s' (see dnal %s --help)\n", cmd, a, cmd);
            return DNAL_EXIT_USAGE;
        } else if (npos < max_positional) {
            pos[npos++] = a;
        } else {
            fprintf(stderr, "dnal %s: unexpected argument '%s'\n", cmd, a);
            return DNAL_EXIT_USAGE;
        }
    }
    if (positional)
        *positional = npos;
    return dnal_config_validate(cfg) ? DNAL_EXIT_USAGE : DNAL_EXIT_OK;
}

void cli_print_config(const char *cmd, const dnal_config *cfg)
{
    printf("# dnal %s: resolved configuration\n", cmd);
    dnal_config_write(cfg, stdout);
    printf("# end of configuration\n");
    fflush(stdout);
}

int cli_mpi_start(void)
{
    int rank = 0;
    MPI_CHECK(MPI_Init(NULL, NULL));
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    /* only rank 0 prints (DESIGN.md section 4); errors still reach stderr */
    if (rank != 0 && !freopen("/dev/null", "w", stdout))
        dnal_fatal(DNAL_EXIT_USAGE, "rank %d: cannot redirect stdout to /dev/null", rank);
    return rank;
}
