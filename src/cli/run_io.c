/* What the training subcommands write, on rank 0: the HDF5 run log
 * (log.path), a checkpoint at each stage end (checkpoint.dir/<stage>.h5)
 * and, once pruned, the compact model (checkpoint.dir/model.h5); and
 * run.init (every rank reads the checkpoint). */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
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

/* the log's rows once everything buffered is in the file */
static dnal_log_rows flushed_rows(dnal_runlog *log)
{
    dnal_runlog_flush(log);
    return dnal_runlog_rows(log);
}

static void stage_end(void *arg, dnal_run *r, const char *stage)
{
    char path[DNAL_PATH_MAX + 64];
    dnal_runlog *log = arg;
    if (!strcmp(stage, "prune"))
        dnal_runlog_arch(log, r);
    checkpoint_dir(&r->cfg);
    snprintf(path, sizeof path, "%s/%s.h5", r->cfg.checkpoint.dir, stage);
    dnal_log_rows rows = flushed_rows(log);
    dnal_checkpoint_save(path, r, r->done, &rows);
    printf("checkpoint stage=%s path=%s\n", stage, path);
    if (r->compact) {
        snprintf(path, sizeof path, "%s/model.h5", r->cfg.checkpoint.dir);
        dnal_model_save(path, &r->model, &r->record, r->net, r->dense_cost, r->compact_cost);
        printf("model path=%s\n", path);
    }
    fflush(stdout);
}

static int is_step_checkpoint(const char *name, long long *step)
{
    int end = 0;
    return sscanf(name, "step-%lld.h5%n", step, &end) == 1 && name[end] == '\0';
}

/* removes all but the newest `keep` step-N.h5 of the folder */
static void keep_newest(const char *dir, int64_t keep)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    long long steps[4096];
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 4096;)
        if (is_step_checkpoint(e->d_name, &steps[n]))
            n++;
    closedir(d);
    for (int i = 0; i < n; i++) {
        int newer = 0;
        for (int j = 0; j < n; j++)
            newer += steps[j] > steps[i];
        if (newer >= keep) {
            char path[DNAL_PATH_MAX + 64];
            snprintf(path, sizeof path, "%s/step-%08lld.h5", dir, steps[i]);
            remove(path);
        }
    }
}

static void step_checkpoint(void *arg, dnal_run *r, int stopping)
{
    char path[DNAL_PATH_MAX + 64];
    checkpoint_dir(&r->cfg);
    snprintf(path, sizeof path, "%s/step-%08lld.h5", r->cfg.checkpoint.dir, (long long)r->step);
    dnal_log_rows rows = flushed_rows(arg);
    dnal_checkpoint_save(path, r, r->done, &rows);
    keep_newest(r->cfg.checkpoint.dir, r->cfg.checkpoint.keep);
    printf("checkpoint step=%lld path=%s%s\n", (long long)r->step, path, stopping ? " signal=1" : "");
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

static void on_signal(int sig)
{
    dnal_run_request_stop(sig);
}

void cli_run_io(dnal_run *r, const char *resume)
{
    dnal_log_rows rows = {0};
    if (resume)
        rows = dnal_run_resume_from(r, resume);
    else if (r->cfg.run.init[0])
        dnal_run_init_from(r, r->cfg.run.init);
    /* SIGUSR1 (SLURM's warning before the time limit) or SIGTERM to any rank:
     * every rank checkpoints at the same step and exits 75 */
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (r->dist.rank != 0) /* rank 0 writes; every rank holds the same state */
        return;
    dnal_runlog *log = resume ? dnal_runlog_reopen(r->cfg.log.path, r, rows)
                              : dnal_runlog_create(r->cfg.log.path, r);
    r->hooks = (dnal_run_hooks){.arg = log, .stage_end = stage_end, .step = log_step,
                                .gates = log_gates, .eval = log_eval,
                                .checkpoint = step_checkpoint};
    printf("log path=%s%s\n", r->cfg.log.path, resume ? " resumed=1" : "");
    fflush(stdout);
}

/* the newest checkpoint of a folder: most steps, then most stages done */
int cli_resume_path(const char *arg, char *out, size_t len)
{
    struct stat st;
    if (stat(arg, &st) != 0) {
        fprintf(stderr, "dnal: error: --resume %s: %s\n", arg, strerror(errno));
        return DNAL_EXIT_DATA;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(out, len, "%s", arg);
        return 0;
    }
    DIR *d = opendir(arg);
    double best_step = -1;
    int best_done = -1;
    out[0] = '\0';
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 3, ".h5") || !strcmp(e->d_name, "model.h5"))
            continue;
        char path[DNAL_PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", arg, e->d_name);
        double step;
        int done;
        if (dnal_checkpoint_peek(path, &step, &done) &&
            (step > best_step || (step == best_step && done > best_done))) {
            best_step = step;
            best_done = done;
            snprintf(out, len, "%s", path);
        }
    }
    if (d)
        closedir(d);
    if (!out[0]) {
        fprintf(stderr, "dnal: error: --resume %s: no dnal checkpoint in the folder\n", arg);
        return DNAL_EXIT_DATA;
    }
    return 0;
}

void cli_run_io_end(dnal_run *r)
{
    dnal_runlog_finish(r->hooks.arg); /* only reached when every stage is done */
    dnal_runlog_close(r->hooks.arg);
    r->hooks = (dnal_run_hooks){0};
}
