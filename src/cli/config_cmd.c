/* dnal config: the resolved configuration, or every key (--list). Reads
 * files only, no MPI, so it runs on a login node. */
#include <stdio.h>
#include <string.h>

#include "cli_internal.h"
#include "dnal/cli.h"
#include "dnal/config.h"

static int has_list(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--list"))
            return 1;
    return 0;
}

int dnal_cmd_config(int argc, char **argv)
{
    if (has_list(argc, argv)) {
        if (argc != 2) {
            fprintf(stderr, "dnal config: --list takes no other arguments (it lists the "
                            "defaults, not a FILE's values)\n");
            return DNAL_EXIT_USAGE;
        }
        dnal_config_list(stdout);
        return DNAL_EXIT_OK;
    }
    dnal_config cfg;
    char resume[4096]; /* --resume: the configuration a resumed run would use */
    int rc = cli_run_config("config", argc, argv, &cfg, resume, sizeof resume);
    if (rc)
        return rc;
    dnal_config_write(&cfg, stdout);
    return DNAL_EXIT_OK;
}
