/* What the training subcommands write: a checkpoint at each stage end
 * (checkpoint.dir/<stage>.h5) and, once pruned, the compact model
 * (checkpoint.dir/model.h5); and run.init. */
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
    (void)arg;
    if (r->dist.rank != 0) /* rank 0 writes; every rank holds the same state */
        return;
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

void cli_run_io(dnal_run *r)
{
    r->hooks.stage_end = stage_end;
    if (r->cfg.run.init[0])
        dnal_run_init_from(r, r->cfg.run.init);
}
