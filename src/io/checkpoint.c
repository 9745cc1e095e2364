/* Checkpoints of a run at stage ends (DESIGN.md section 7): the model, the
 * current network's flat parameters and BN statistics, alpha and the masks
 * of the dense network, alpha's momentum, beta, lambda, the step, the stages
 * done and the resolved configuration. Written to PATH.tmp and renamed when
 * complete.
 *
 *   /                 attrs format="dnal-checkpoint", version, dnal_version,
 *                     model, in_channels, image_size, classes, width,
 *                     compact, beta, lambda, step, done, config,
 *                     n_param, n_stats, n_gates (of the current network)
 *   /net/param, /net/stats       the current network (dense or compact)
 *   /dense/alpha, /dense/mask    one entry per gated channel of the dense network
 *   /dense/alpha_momentum */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dnal/io.h"
#include "h5util.h"

enum { CHECKPOINT_FORMAT_VERSION = 2 }; /* 2: mid-stage state; 1 still loads */

static void write_flat(hid_t f, const char *name, const float *v, size_t n)
{
    hsize_t dims = n;
    h5_write_f32(f, name, v, 1, &dims);
}

void dnal_checkpoint_save(const char *path, const dnal_run *r, const char *done,
                          const dnal_log_rows *rows)
{
    char tmp[DNAL_PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    hid_t f = h5_create(tmp);
    const dnal_net *net = r->net;
    char *config = dnal_config_text(&r->cfg);
    h5_attr_str(f, "format", "dnal-checkpoint");
    h5_attr_f64(f, "version", CHECKPOINT_FORMAT_VERSION);
    h5_attr_str(f, "dnal_version", PACKAGE_VERSION);
    h5_attr_str(f, "model", r->model.name);
    h5_attr_f64(f, "in_channels", (double)r->model.in_channels);
    h5_attr_f64(f, "image_size", (double)r->model.image_size);
    h5_attr_f64(f, "classes", (double)r->model.classes);
    h5_attr_f64(f, "width", r->model.width);
    h5_attr_f64(f, "compact", r->compact);
    h5_attr_f64(f, "beta", r->arch.beta);
    h5_attr_f64(f, "lambda", r->arch.lambda);
    h5_attr_f64(f, "step", (double)r->step);
    h5_attr_str(f, "done", done);
    h5_attr_str(f, "config", config);
    h5_attr_f64(f, "n_param", (double)net->n_param);
    h5_attr_f64(f, "n_stats", (double)net->n_stats);
    h5_attr_f64(f, "n_gates", (double)net->n_gates);
    h5_attr_f64(f, "stage_step", (double)r->stage_step);
    h5_attr_f64(f, "log_since", (double)r->log_since);
    h5_attr_f64(f, "log_loss_sum", r->log_loss_sum);
    h5_attr_f64(f, "held", r->arch.held);
    h5_attr_f64(f, "top1_search", r->top1_search);
    h5_attr_f64(f, "top1_pruned", r->top1_pruned);
    h5_attr_f64(f, "world_size", r->dist.size);
    h5_attr_f64(f, "log_steps", rows ? (double)rows->steps : 0);
    h5_attr_f64(f, "log_gates", rows ? (double)rows->gates : 0);
    h5_attr_f64(f, "log_eval", rows ? (double)rows->eval : 0);
    free(config);
    if (r->stage_step > 0)
        write_flat(f, "/net/momentum", r->opt.velocity, net->n_param);
    write_flat(f, "/net/param", net->param, net->n_param);
    write_flat(f, "/net/stats", net->stats, net->n_stats);
    if (r->compact) { /* the dense masks live in the record */
        size_t n = 0;
        for (int i = 0; i < r->record.n; i++)
            n += (size_t)r->record.channels[i];
        float *mask = malloc(sizeof *mask * (n + 1));
        DNAL_ASSERT(mask);
        for (int i = 0, k = 0; i < r->record.n; i++)
            for (int64_t c = 0; c < r->record.channels[i]; c++)
                mask[k++] = r->record.mask[i][c];
        write_flat(f, "/dense/mask", mask, n);
        free(mask);
    } else {
        write_flat(f, "/dense/alpha", net->alpha, net->n_gates);
        write_flat(f, "/dense/mask", net->mask, net->n_gates);
        write_flat(f, "/dense/alpha_momentum", r->arch.opt.velocity, net->n_gates);
    }
    h5_close_atomic(f, tmp, path);
}

/* checks the structure the flat buffers were written for */
static void check_count(hid_t f, const char *path, const char *what, size_t have)
{
    double n = h5_get_f64(f, what);
    if ((size_t)n != have)
        dnal_fatal(DNAL_EXIT_DATA, "%s: checkpoint has %.0f %s, this network %zu (another model or width?)",
                   path, n, what + 2, have);
}

dnal_net *dnal_checkpoint_load(const dnal_ctx *ctx, const char *path, int64_t batch,
                               dnal_checkpoint_info *info, dnal_arch_record *rec)
{
    hid_t f = h5_open(path, "checkpoint");
    char *format = h5_get_str(f, "format");
    if (strcmp(format, "dnal-checkpoint"))
        dnal_fatal(DNAL_EXIT_DATA, "%s: a %s file, not a dnal checkpoint", path, format);
    free(format);
    memset(info, 0, sizeof *info);
    char *model = h5_get_str(f, "model");
    snprintf(info->model.name, sizeof info->model.name, "%s", model);
    free(model);
    if (!dnal_model_known(info->model.name))
        dnal_fatal(DNAL_EXIT_DATA, "%s: unknown model '%s'", path, info->model.name);
    info->model.cfg = (dnal_model_cfg){.name = info->model.name, .batch = batch,
                                       .in_channels = (int64_t)h5_get_f64(f, "in_channels"),
                                       .image_size = (int64_t)h5_get_f64(f, "image_size"),
                                       .classes = (int64_t)h5_get_f64(f, "classes"),
                                       .width = h5_get_f64(f, "width")};
    info->compact = h5_get_f64(f, "compact") != 0;
    info->beta = h5_get_f64(f, "beta");
    info->lambda = h5_get_f64(f, "lambda");
    info->step = (int64_t)h5_get_f64(f, "step");
    info->done = h5_get_str(f, "done");
    info->config = h5_get_str(f, "config");
    if (h5_get_f64(f, "version") >= 2) {
        info->stage_step = (int64_t)h5_get_f64(f, "stage_step");
        info->log_since = (int64_t)h5_get_f64(f, "log_since");
        info->log_loss_sum = h5_get_f64(f, "log_loss_sum");
        info->held = h5_get_f64(f, "held") != 0;
        info->top1_search = h5_get_f64(f, "top1_search");
        info->top1_pruned = h5_get_f64(f, "top1_pruned");
        info->world_size = (int)h5_get_f64(f, "world_size");
        info->log_rows = (dnal_log_rows){(int64_t)h5_get_f64(f, "log_steps"),
                                         (int64_t)h5_get_f64(f, "log_gates"),
                                         (int64_t)h5_get_f64(f, "log_eval")};
    } else {
        info->top1_search = info->top1_pruned = NAN;
    }

    dnal_net *net = dnal_model_build(ctx, &info->model.cfg);
    info->model.dense.flops = dnal_net_cost(net, NULL).flops;
    info->model.dense.params = dnal_net_cost(net, NULL).params;
    h5_read_f32(f, "/dense/mask", net->mask, net->n_gates);
    info->alpha_momentum = calloc(net->n_gates + 1, sizeof *info->alpha_momentum);
    DNAL_ASSERT(info->alpha_momentum);
    if (info->compact) {
        if (rec)
            dnal_arch_record_of(rec, net);
        info->model.compact = dnal_net_cost(net, net->mask);
        dnal_net *compact = dnal_net_compact(net, batch);
        dnal_net_destroy(net);
        net = compact;
    } else {
        h5_read_f32(f, "/dense/alpha", net->alpha, net->n_gates);
        h5_read_f32(f, "/dense/alpha_momentum", info->alpha_momentum, net->n_gates);
        info->model.compact = info->model.dense;
    }
    check_count(f, path, "n_param", net->n_param);
    check_count(f, path, "n_stats", net->n_stats);
    h5_read_f32(f, "/net/param", net->param, net->n_param);
    h5_read_f32(f, "/net/stats", net->stats, net->n_stats);
    if (info->stage_step > 0) {
        info->weight_momentum = malloc(sizeof(float) * (net->n_param + 1));
        DNAL_ASSERT(info->weight_momentum);
        h5_read_f32(f, "/net/momentum", info->weight_momentum, net->n_param);
    }
    H5Fclose(f);
    return net;
}

void dnal_checkpoint_info_free(dnal_checkpoint_info *info)
{
    free(info->done);
    free(info->config);
    free(info->alpha_momentum);
    free(info->weight_momentum);
    memset(info, 0, sizeof *info);
}

char *dnal_checkpoint_config(const char *path)
{
    hid_t f = h5_open(path, "checkpoint");
    char *format = h5_get_str(f, "format");
    if (strcmp(format, "dnal-checkpoint"))
        dnal_fatal(DNAL_EXIT_DATA, "%s: a %s file, not a dnal checkpoint", path, format);
    free(format);
    char *config = h5_get_str(f, "config");
    H5Fclose(f);
    return config;
}

int dnal_checkpoint_peek(const char *path, double *step, int *stages_done)
{
    dnal_h5_quiet();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        return 0;
    int ok = H5Aexists(f, "format") > 0 && H5Aexists(f, "step") > 0 && H5Aexists(f, "done") > 0;
    if (ok) {
        char *format = h5_get_str(f, "format");
        ok = !strcmp(format, "dnal-checkpoint");
        free(format);
    }
    if (ok) {
        *step = h5_get_f64(f, "step");
        char *done = h5_get_str(f, "done");
        *stages_done = done[0] != '\0';
        for (const char *p = done; *p; p++)
            *stages_done += *p == ',';
        free(done);
    }
    H5Fclose(f);
    return ok;
}

/* The checkpoint's network, masks and architecture state into run r. */
static void load_into(dnal_run *r, const char *path, dnal_checkpoint_info *info)
{
    dnal_arch_record rec = {0};
    dnal_net *net = dnal_checkpoint_load(r->ctx, path, r->local_batch, info, &rec);
    const dnal_model_cfg *m = &info->model.cfg;
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
    } else {
        memcpy(r->arch.opt.velocity, info->alpha_momentum, sizeof(float) * net->n_gates);
    }
    dnal_net_set_labels(r->net, r->labels);
}

void dnal_run_init_from(dnal_run *r, const char *path)
{
    dnal_checkpoint_info info;
    load_into(r, path, &info);
    printf("init from=%s stages_done=%s step=%lld compact=%d\n", path, info.done,
           (long long)info.step, info.compact);
    fflush(stdout);
    dnal_checkpoint_info_free(&info);
}

dnal_log_rows dnal_run_resume_from(dnal_run *r, const char *path)
{
    dnal_checkpoint_info info;
    load_into(r, path, &info);
    snprintf(r->done, sizeof r->done, "%s", info.done);
    r->stage_step = info.stage_step;
    r->log_since = info.log_since;
    r->log_loss_sum = info.log_loss_sum;
    r->arch.held = info.held;
    r->top1_search = info.top1_search;
    r->top1_pruned = info.top1_pruned;
    r->resumed_world_size = info.world_size;
    r->resume_momentum = info.weight_momentum;
    info.weight_momentum = NULL; /* the run frees it */
    printf("resume from=%s stages_done=%s step=%lld stage_step=%lld world_size=%d "
           "checkpoint_world_size=%d\n",
           path, info.done[0] ? info.done : "none", (long long)info.step,
           (long long)info.stage_step, r->dist.size, info.world_size);
    if (info.world_size != r->dist.size)
        printf("resume note: the checkpoint was written by %d ranks, this run has %d; the data "
               "order does not depend on it, per-rank BN statistics do\n",
               info.world_size, r->dist.size);
    fflush(stdout);
    dnal_log_rows rows = info.log_rows;
    dnal_checkpoint_info_free(&info);
    return rows;
}
