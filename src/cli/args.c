/* The options every configurable subcommand shares: -c FILE and --set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <mpi.h>

#include "cli_internal.h"

#ifndef DNAL_CONFIGDIR /* Makefile.am: $(pkgdatadir)/configs, where make install puts them */
#define DNAL_CONFIGDIR "/usr/local/share/dnal/configs"
#endif

/* -c FILE_OR_NAME: a file that exists, else a shipped config by name (NAME or
 * NAME.ini in the installed configs folder, DNAL_CONFIGDIR, e.g. paper/imagenet-resnet50),
 * else a path that names a file (dnal_config_load names the error). Returns the path to
 * load in path, or 1 after naming where it looked. */
static int find_config(const char *cmd, const char *arg, char *path, size_t len)
{
    if (access(arg, F_OK) == 0) {
        snprintf(path, len, "%s", arg);
        return 0;
    }
    for (int ext = 0; ext < 2 && arg[0] != '/'; ext++) {
        int w = snprintf(path, len, "%s/%s%s", DNAL_CONFIGDIR, arg, ext ? ".ini" : "");
        if (w > 0 && (size_t)w < len && access(path, R_OK) == 0)
            return 0;
    }
    if (strchr(arg, '/')) { /* a path: dnal_config_load names the missing file */
        snprintf(path, len, "%s", arg);
        return 0;
    }
    fprintf(stderr, "dnal %s: -c %s: no such file, and no shipped config %s(.ini) in %s\n", cmd,
            arg, arg, DNAL_CONFIGDIR);
    return DNAL_EXIT_USAGE;
}

/* resumed: base is a checkpoint's configuration, whose run.threads was the
 * old allocation's; the resumed run takes its own (OMP_NUM_THREADS or --set). */
static int config_from(const char *cmd, const char *base, const char *origin, int argc,
                       char **argv, dnal_config *cfg, int *positional, int max_positional,
                       const char **pos)
{
    int npos = 0;
    dnal_config_defaults(cfg);
    if (base && dnal_config_load_text(cfg, base, origin))
        return DNAL_EXIT_USAGE;
    if (base)
        cfg->run.threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "dnal %s: %s needs a file\n", cmd, a);
                return DNAL_EXIT_USAGE;
            }
            char path[4096];
            if (find_config(cmd, argv[++i], path, sizeof path) || dnal_config_load(cfg, path))
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

int cli_config(const char *cmd, int argc, char **argv, dnal_config *cfg, int *positional,
               int max_positional, const char **pos)
{
    return config_from(cmd, NULL, NULL, argc, argv, cfg, positional, max_positional, pos);
}

int cli_run_config(const char *cmd, int argc, char **argv, dnal_config *cfg, char *resume,
                   size_t len)
{
    const char *arg = NULL;
    int out = 1;
    resume[0] = '\0';
    for (int i = 1; i < argc; i++) { /* take --resume X out of argv */
        if (strcmp(argv[i], "--resume")) {
            argv[out++] = argv[i];
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "dnal %s: --resume needs a checkpoint file or folder\n", cmd);
            return DNAL_EXIT_USAGE;
        }
        arg = argv[++i];
    }
    argc = out;
    if (!arg)
        return config_from(cmd, NULL, NULL, argc, argv, cfg, NULL, 0, NULL);
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) {
            fprintf(stderr, "dnal %s: --resume continues with the checkpoint's configuration; "
                    "change keys with --set, not -c\n", cmd);
            return DNAL_EXIT_USAGE;
        }
    int rc = dnal_checkpoint_find(arg, resume, len);
    if (rc)
        return rc;
    char *text = dnal_checkpoint_config(resume);
    rc = config_from(cmd, text, resume, argc, argv, cfg, NULL, 0, NULL);
    free(text);
    return rc;
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
    int rank = 0, provided = MPI_THREAD_SINGLE;
    /* loader and OpenMP threads exist, but only the main thread calls MPI
     * (a worker's fatal error is handed to it: src/core/error.c) */
    MPI_CHECK(MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided));
    if (provided < MPI_THREAD_FUNNELED)
        dnal_fatal(DNAL_EXIT_SOFTWARE, "MPI provides thread level %d, dnal needs "
                   "MPI_THREAD_FUNNELED (%d)", provided, MPI_THREAD_FUNNELED);
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    /* only rank 0 prints (docs/design.md, "The MPI protocol"); errors still reach stderr */
    if (rank != 0 && !freopen("/dev/null", "w", stdout))
        dnal_fatal(DNAL_EXIT_USAGE, "rank %d: cannot redirect stdout to /dev/null", rank);
    return rank;
}
