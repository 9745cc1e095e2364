/* A run's files: the HDF5 run log (log.path) and checkpoints written by
 * rank 0 (every rank holds the same state), the compact model file once
 * pruned, and what every rank reads: run.init or the checkpoint a resumed
 * run continues. Also the stop signals: SIGUSR1 (SLURM's warning before the
 * time limit) or SIGTERM to any rank make every rank checkpoint at the same
 * step and exit 75. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <omp.h>

#include "internal.h"

void dnal_run_request_stop(int signal)
{
    dnal_stop_request(signal);
}

int run_io_stop_requested(void)
{
    return dnal_stop_requested() != 0;
}

/* ------------------------------------------------------------ reading */

/* The checkpoint's network, masks and architecture state into run r. */
static void load_into(dnal_run *r, const char *path, dnal_checkpoint_info *info)
{
    dnal_arch_record rec = {0};
    dnal_model_info first; /* compared before anything is built from the file */
    dnal_checkpoint_model(path, r->local_batch, &first);
    const dnal_model_cfg *m = &first.cfg;
    if (strcmp(m->name, r->model.name) || m->in_channels != r->model.in_channels ||
        m->image_size != r->model.image_size || m->classes != r->model.classes ||
        m->width != r->model.width)
        dnal_fatal(DNAL_EXIT_DATA,
                   "%s: checkpoint of %s (%lld channels, %lldx%lld, %lld classes, width %g); this run "
                   "builds %s (%lld, %lldx%lld, %lld, %g)",
                   path, m->name, (long long)m->in_channels, (long long)m->image_size,
                   (long long)m->image_size, (long long)m->classes, m->width, r->model.name,
                   (long long)r->model.in_channels, (long long)r->model.image_size,
                   (long long)r->model.image_size, (long long)r->model.classes, r->model.width);
    if (strcmp(m->sha256, r->model.sha256) || strcmp(m->no_gate, r->model.no_gate))
        dnal_fatal(DNAL_EXIT_DATA, "%s: checkpoint of the ONNX file with SHA-256 %s (model.no_gate "
                   "'%s'); this run builds %s with %s ('%s')", path, m->sha256, m->no_gate,
                   r->model.path, r->model.sha256, r->model.no_gate);
    if (m->gate_stem != r->model.gate_stem || m->classifier_bn != r->model.classifier_bn)
        dnal_fatal(DNAL_EXIT_DATA,
                   "%s: checkpoint of %s with gate_stem=%d classifier_bn=%d; this run builds it with "
                   "model.gate_stem=%d model.classifier_bn=%d",
                   path, m->name, m->gate_stem, m->classifier_bn, r->model.gate_stem,
                   r->model.classifier_bn);
    dnal_net *net = dnal_checkpoint_load(r->ctx, path, r->local_batch, info, &rec);
    dnal_net_destroy(r->net);
    r->net = net;
    r->compact = info->compact;
    r->step = info->step;
    if (strstr(info->done, "search") || info->stage_step > 0) {
        /* else the checkpoint's are its config's, not this run's */
        r->arch.beta = info->beta;
        r->arch.lambda = info->lambda;
    }
    if (info->compact) {
        dnal_arch_record_free(&r->record);
        r->record = rec;
        r->compact_cost = info->model.compact;
        r->compact_authors = info->model.compact_authors;
    } else {
        memcpy(r->arch.opt.velocity, info->alpha_momentum, sizeof(float) * net->n_gates);
    }
    dnal_net_set_labels(r->net, r->labels);
}

/* run.init: the checkpoint's network, masks, beta, lambda and step */
static void init_from(dnal_run *r, const char *path)
{
    dnal_checkpoint_info info;
    load_into(r, path, &info);
    report_init(path, &info);
    dnal_checkpoint_info_free(&info);
}

/* --resume: run.init's state plus the stages done, the position inside the
 * stage, both momenta and the summary's accuracies; returns the log rows
 * to keep */
static dnal_log_rows resume_from(dnal_run *r, const char *path)
{
    dnal_checkpoint_info info;
    load_into(r, path, &info);
    snprintf(r->done, sizeof r->done, "%s", info.done);
    r->stage_step = info.stage_step;
    r->log_since = info.log_since;
    r->log_loss_sum = info.log_loss_sum;
    r->arch.held = info.held;
    r->eval_pending = info.eval_pending;
    snprintf(r->run_id, sizeof r->run_id, "%s", info.run_id);
    r->top1_search = info.top1_search;
    r->top1_pruned = info.top1_pruned;
    r->latency_times = info.latency;
    r->resume_momentum = info.weight_momentum;
    info.weight_momentum = NULL; /* the run frees it */
    report_resume(r, path, &info);
    dnal_log_rows rows = info.log_rows;
    dnal_checkpoint_info_free(&info);
    return rows;
}

/* ------------------------------------------------------------ the folders */

static void make_checkpoint_dir(const dnal_config *cfg)
{
    if (mkdir(cfg->checkpoint.dir, 0777) != 0 && errno != EEXIST)
        dnal_fatal(DNAL_EXIT_DATA, "checkpoint.dir %s: cannot create: %s", cfg->checkpoint.dir,
                   strerror(errno));
}

/* A file of `bytes` can be made in dir (space reserved, then removed):
 * an unwritable or full folder is found before the first step, not at the
 * first checkpoint hours later. */
static void check_room(const char *dir, const char *key, off_t bytes)
{
    char probe[DNAL_PATH_MAX + 64];
    snprintf(probe, sizeof probe, "%s/.dnal-probe-%ld", dir, (long)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int err = fd < 0 ? errno : posix_fallocate(fd, 0, bytes);
    if (fd >= 0) {
        close(fd);
        unlink(probe);
    }
    if (err == EOPNOTSUPP || err == EINVAL) /* no fallocate here: creating it sufficed */
        err = 0;
    if (err)
        dnal_fatal(DNAL_EXIT_DATA, "%s %s: cannot write %lld bytes there: %s", key, dir,
                   (long long)bytes, strerror(err));
}

/* rank 0, a fresh run: checkpoint.dir must not hold another run's
 * checkpoints (their step checkpoints would be overwritten, or rotated
 * against ours); both folders must take a checkpoint */
static void check_folders(dnal_run *r, int resumed)
{
    if (r->dist.rank != 0)
        return;
    const dnal_config *cfg = &r->cfg;
    char other[DNAL_PATH_MAX + 300];
    if (!resumed && dnal_checkpoint_dir_foreign(cfg->checkpoint.dir, r->run_id, other, sizeof other))
        dnal_fatal(DNAL_EXIT_USAGE, "checkpoint.dir %s holds checkpoints of another run (%s): "
                   "continue it with --resume %s, or give this run its own checkpoint.dir",
                   cfg->checkpoint.dir, other, cfg->checkpoint.dir);
    make_checkpoint_dir(cfg);
    const dnal_net *net = r->net;
    off_t bytes = (off_t)(sizeof(float) * (2 * net->n_param + net->n_stats + 3 * net->n_gates)) +
                  (1 << 20);
    check_room(cfg->checkpoint.dir, "checkpoint.dir", bytes);
    char logdir[DNAL_PATH_MAX];
    snprintf(logdir, sizeof logdir, "%s", cfg->log.path);
    char *slash = strrchr(logdir, '/');
    if (slash)
        *(slash == logdir ? slash + 1 : slash) = '\0';
    else
        snprintf(logdir, sizeof logdir, ".");
    check_room(logdir, "log.path's folder", 1 << 20);
}

/* ------------------------------------------------------------ the log */

static void open_log(dnal_run *r, int resumed, dnal_log_rows rows)
{
    dnal_arch_record own = {0};
    if (!r->compact)
        dnal_arch_record_of(&own, r->net);
    char *config = dnal_config_text(&r->cfg);
    DNAL_ASSERT(config);
    dnal_runlog_info info = {.config = config, .world_size = r->dist.size,
                             .threads = omp_get_max_threads(), .seed = r->cfg.run.seed,
                             .dense = r->dense_cost,
                             .compact = r->compact ? r->compact_cost : (dnal_cost){NAN, NAN},
                             .compact_authors = r->compact ? r->compact_authors
                                                           : (dnal_cost){NAN, NAN},
                             .gates = r->compact ? &r->record : &own};
    const char *path = r->cfg.log.path;
    char moved[DNAL_PATH_MAX + 64] = "";
    r->log = resumed ? dnal_runlog_reopen(path, &info, rows, moved, sizeof moved) : NULL;
    int missing = resumed && !r->log; /* the log went missing: a new one, from here on */
    info.moved_aside = moved;
    if (!r->log) {
        r->log = dnal_runlog_create(path, &info);
        if (r->latency_times.of[0]) /* resumed after prune: the times it measured */
            dnal_runlog_latency(r->log, &r->latency_times);
    }
    report_log(path, resumed, missing, r->step, moved);
    free(config);
    dnal_arch_record_free(&own);
}

void dnal_run_start(dnal_run *r, const char *resume)
{
    dnal_log_rows rows = {0};
    if (resume) {
        rows = resume_from(r, resume);
    } else {
        dnal_run_id_new(r->run_id);
        check_folders(r, 0); /* before anything slow of this run's own */
        if (r->cfg.run.init[0])
            init_from(r, r->cfg.run.init);
    }
    if (resume)
        check_folders(r, 1);
    report_run_id(r->run_id, resume != NULL);
    dnal_stop_check(resume ? "resuming" : "starting");
    if (r->dist.rank == 0)
        open_log(r, resume != NULL, rows);
}

void run_io_step(dnal_run *r, const dnal_log_step *row)
{
    if (r->log)
        dnal_runlog_step(r->log, row);
}

void run_io_gates(dnal_run *r)
{
    if (r->log)
        dnal_runlog_gates(r->log, r->step, r->arch.beta, r->net->alpha);
}

void run_io_eval(dnal_run *r, dnal_stage stage, double epoch, const dnal_eval *e)
{
    dnal_log_eval row = {.stage = stage, .epoch = epoch, .top1 = e->top1, .top5 = e->top5,
                         .loss = e->loss};
    if (r->log)
        dnal_runlog_eval(r->log, &row);
}

void run_io_finish(dnal_run *r)
{
    if (r->log)
        dnal_runlog_finish(r->log);
}

/* ------------------------------------------------------------ checkpoints */

/* the run's state as a checkpoint holds it, with the log's rows once
 * everything buffered is in the file */
static void save_checkpoint(dnal_run *r, const char *path)
{
    dnal_runlog_flush(r->log);
    char *config = dnal_config_text(&r->cfg);
    DNAL_ASSERT(config);
    dnal_checkpoint_info info = {
        .model = {.cfg = r->model}, .compact = r->compact, .beta = r->arch.beta,
        .lambda = r->arch.lambda, .held = r->arch.held, .step = r->step,
        .stage_step = r->stage_step, .log_since = r->log_since, .log_loss_sum = r->log_loss_sum,
        .done = r->done, .config = config, .alpha_momentum = r->arch.opt.velocity,
        .weight_momentum = r->stage_step > 0 ? r->opt.velocity : NULL,
        .top1_search = r->top1_search, .top1_pruned = r->top1_pruned,
        .world_size = r->dist.size, .log_rows = dnal_runlog_rows(r->log),
        .eval_pending = r->eval_pending, .latency = r->latency_times};
    snprintf(info.run_id, sizeof info.run_id, "%s", r->run_id);
    dnal_checkpoint_save(path, &info, r->net, &r->record);
    free(config);
}

void run_io_stage_end(dnal_run *r, const char *stage)
{
    if (!r->log)
        return;
    char path[DNAL_PATH_MAX + 64];
    if (!strcmp(stage, "prune"))
        dnal_runlog_arch(r->log, &r->record, r->compact_cost, r->compact_authors);
    if (!strcmp(stage, "prune") && r->latency_times.of[0])
        dnal_runlog_latency(r->log, &r->latency_times);
    make_checkpoint_dir(&r->cfg);
    snprintf(path, sizeof path, "%s/%s.h5", r->cfg.checkpoint.dir, stage);
    save_checkpoint(r, path);
    report_checkpoint(stage, path, r->step, 0);
    if (r->compact) {
        snprintf(path, sizeof path, "%s/model.h5", r->cfg.checkpoint.dir);
        dnal_model_save(path, &r->model, &r->record, r->net, r->dense_cost, r->compact_cost);
        report_model_file(path);
    }
}

void run_io_checkpoint(dnal_run *r, int stopping)
{
    if (!r->log)
        return;
    char path[DNAL_PATH_MAX + 64];
    make_checkpoint_dir(&r->cfg);
    dnal_checkpoint_step_path(path, sizeof path, r->cfg.checkpoint.dir, r->step);
    save_checkpoint(r, path);
    dnal_checkpoint_keep_newest(r->cfg.checkpoint.dir, r->cfg.checkpoint.keep, r->run_id);
    report_checkpoint("step", path, r->step, stopping);
}
