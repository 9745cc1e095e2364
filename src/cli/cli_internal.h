/* Helpers shared by the subcommands (not installed). */
#ifndef DNAL_CLI_INTERNAL_H
#define DNAL_CLI_INTERNAL_H

#include "dnal/core.h"
#include "dnal/io.h"

/* Defaults, then -c FILE and --set section.key=value in order, then
 * validation; up to max_positional other arguments land in pos. Returns 0,
 * or 1 after printing the error. */
int cli_config(const char *cmd, int argc, char **argv, dnal_config *cfg, int *positional,
               int max_positional, const char **pos);
/* The same for a subcommand that trains, taking --resume DIR_OR_FILE: then
 * the checkpoint's configuration (and --set) instead of the defaults and -c;
 * resume receives the checkpoint ("" without --resume). */
int cli_run_config(const char *cmd, int argc, char **argv, dnal_config *cfg, char *resume,
                   size_t len);
void cli_print_config(const char *cmd, const dnal_config *cfg);
/* MPI_Init; stdout of ranks other than 0 goes to /dev/null. Returns the rank. */
int cli_mpi_start(void);

#endif
