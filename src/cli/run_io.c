/* What the training subcommands write, on rank 0: the HDF5 run log
 * (log.path), a checkpoint at each stage end (checkpoint.dir/<stage>.h5)
 * and, once pruned, the compact model (checkpoint.dir/model.h5); and
 * run.init (every rank reads the checkpoint). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_internal.h"

static void checkpoint_dir(const dnal_config *cfg)
{
    if (mkdir(cfg->checkpoint.dir, 0777) != 0 && errno != EEXIST)
        dnal_fatal(DNAL_EXIT_DATA, "checkpoint.dir %s: cannot create: %s", cfg->checkpoint.dir,
                   strerror(errno));
}

static void stage_end(void *arg, dnal_run *r, const char *stage)
{
    char path[DNAL_PATH_MAX + 64];
    dnal_runlog *log = arg;
    if (!strcmp(stage, "prune"))
        dnal_runlog_arch(log, r);
    checkpoint_dir(&r->cfg);
    snprintf(path, sizeof path, "%s/%s.h5", r->cfg.checkpoint.dir, stage);
    dnal_checkpoint_save(path, r, r->done);
    printf("checkpoint stage=%s path=%s\n", stage, path);
    if (r->compact) {
        snprintf(path, sizeof path, "%s/model.h5", r->cfg.checkpoint.dir);
        dnal_model_save(path, &r->model, &r->record, r->net, r->dense_cost, r->compact_cost);
        printf("model path=%s\n", path);
    }
    fflush(stdout);
}

static void log_step(void *arg, dnal_run *r, const dnal_step_row *row)
{
    dnal_runlog_step(arg, row);
}

static void log_gates(void *arg, dnal_run *r)
{
    dnal_runlog_gates(arg, r->step, r->arch.beta, r->net->alpha);
}

static void log_eval(void *arg, dnal_run *r, dnal_stage stage, double epoch, const dnal_eval *e)
{
    dnal_runlog_eval(arg, stage, epoch, e);
}

void cli_run_io(dnal_run *r)
{
    if (r->cfg.run.init[0])
        dnal_run_init_from(r, r->cfg.run.init);
    if (r->dist.rank != 0) /* rank 0 writes; every rank holds the same state */
        return;
    r->hooks = (dnal_run_hooks){.arg = dnal_runlog_create(r->cfg.log.path, r),
                                .stage_end = stage_end, .step = log_step, .gates = log_gates,
                                .eval = log_eval};
    printf("log path=%s\n", r->cfg.log.path);
    fflush(stdout);
}

void cli_run_io_end(dnal_run *r)
{
    dnal_runlog_close(r->hooks.arg);
    r->hooks = (dnal_run_hooks){0};
}
