/* Checkpoints of a run at stage ends (docs/design.md, "Checkpoints"): the model, the
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
#include <sys/stat.h>

#include "config.h"
#include "dnal/io.h"
#include "h5util.h"

enum { CHECKPOINT_FORMAT_VERSION = 2 }; /* 2: mid-stage state; 1 still loads */

static void write_flat(hid_t f, const char *name, const float *v, size_t n)
{
    hsize_t dims = n;
    h5_write_f32(f, name, v, 1, &dims);
}

void dnal_checkpoint_save(const char *path, const dnal_checkpoint_info *info,
                          const dnal_net *net, const dnal_arch_record *rec)
{
    char tmp[DNAL_PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    hid_t f = h5_create(tmp);
    h5_attr_str(f, "format", "dnal-checkpoint");
    h5_attr_f64(f, "version", CHECKPOINT_FORMAT_VERSION);
    h5_attr_str(f, "dnal_version", PACKAGE_VERSION);
    io_model_attrs_write(f, &info->model.cfg);
    h5_attr_f64(f, "compact", info->compact);
    h5_attr_f64(f, "beta", info->beta);
    h5_attr_f64(f, "lambda", info->lambda);
    h5_attr_f64(f, "step", (double)info->step);
    h5_attr_str(f, "done", info->done);
    h5_attr_str(f, "config", info->config);
    h5_attr_f64(f, "n_param", (double)net->n_param);
    h5_attr_f64(f, "n_stats", (double)net->n_stats);
    h5_attr_f64(f, "n_gates", (double)net->n_gates);
    h5_attr_f64(f, "stage_step", (double)info->stage_step);
    h5_attr_f64(f, "log_since", (double)info->log_since);
    h5_attr_f64(f, "log_loss_sum", info->log_loss_sum);
    h5_attr_f64(f, "held", info->held);
    h5_attr_f64(f, "top1_search", info->top1_search);
    h5_attr_f64(f, "top1_pruned", info->top1_pruned);
    h5_attr_f64(f, "world_size", info->world_size);
    h5_attr_f64(f, "log_steps", (double)info->log_rows.steps);
    h5_attr_f64(f, "log_gates", (double)info->log_rows.gates);
    h5_attr_f64(f, "log_eval", (double)info->log_rows.eval);
    h5_attr_f64(f, "eval_pending", info->eval_pending);
    h5_attr_str(f, "run_id", info->run_id);
    io_latency_attrs_write(f, &info->latency);
    if (info->weight_momentum)
        write_flat(f, "/net/momentum", info->weight_momentum, net->n_param);
    write_flat(f, "/net/param", net->param, net->n_param);
    write_flat(f, "/net/stats", net->stats, net->n_stats);
    if (info->compact) { /* the dense masks live in the record */
        size_t n = 0;
        for (int i = 0; i < rec->n; i++)
            n += (size_t)rec->channels[i];
        float *mask = dnal_alloc(sizeof *mask * (n + 1));
        for (int i = 0, k = 0; i < rec->n; i++)
            for (int64_t c = 0; c < rec->channels[i]; c++)
                mask[k++] = rec->mask[i][c];
        write_flat(f, "/dense/mask", mask, n);
        dnal_free(mask);
    } else {
        write_flat(f, "/dense/alpha", net->alpha, net->n_gates);
        write_flat(f, "/dense/mask", net->mask, net->n_gates);
        write_flat(f, "/dense/alpha_momentum", info->alpha_momentum, net->n_gates);
    }
    h5_close_atomic(f, tmp, path);
}

/* checks the structure the flat buffers were written for */
static void check_count(hid_t f, const char *path, const char *what, size_t have)
{
    double n = (double)h5_get_count(f, path, what, 0, 1e13);
    if ((size_t)n != have)
        dnal_fatal(DNAL_EXIT_DATA, "%s: checkpoint has %.0f %s, this network %zu (another model or width?)",
                   path, n, what + 2, have);
}

/* opens a file that must be a dnal checkpoint */
static hid_t open_checkpoint(const char *path)
{
    hid_t f = h5_open(path, "checkpoint");
    char *format = h5_get_str(f, "format");
    if (strcmp(format, "dnal-checkpoint"))
        dnal_fatal(DNAL_EXIT_DATA, "%s: a %s file, not a dnal checkpoint", path, format);
    free(format);
    return f;
}

/* the list of stages done: known names, each at most once, in a buffer a
 * run can hold */
static void check_done(const char *path, const char *done)
{
    static const char *const stages[] = {"pretrain", "search", "prune", "finetune"};
    int seen[4] = {0};
    const char *p = done;
    if (strlen(done) >= 64)
        dnal_fatal(DNAL_EXIT_DATA, "%s: attribute done is too long (%zu bytes)", path, strlen(done));
    while (*p) {
        size_t n = strcspn(p, ",");
        int k = 0;
        while (k < 4 && (strlen(stages[k]) != n || strncmp(p, stages[k], n)))
            k++;
        if (k == 4 || seen[k]++)
            dnal_fatal(DNAL_EXIT_DATA, "%s: attribute done = '%s' is not a list of stages "
                       "(pretrain, search, prune, finetune), each once", path, done);
        p += n + (p[n] == ',');
    }
}

/* an accuracy: NaN (not measured yet) or in [0, 1] */
static double accuracy_attr(hid_t f, const char *path, const char *name)
{
    double v = h5_get_f64(f, name);
    if (!isnan(v) && !(v >= 0 && v <= 1))
        dnal_fatal(DNAL_EXIT_DATA, "%s: attribute %s = %g is not an accuracy", path, name, v);
    return v;
}

/* Everything the checkpoint says besides its buffers, each value checked
 * for range before a network is built from it. */
static void read_info(hid_t f, const char *path, int64_t batch, dnal_checkpoint_info *info)
{
    const double most = 1e15; /* steps, rows: far beyond any run, far below int64 */
    memset(info, 0, sizeof *info);
    int64_t version = h5_get_count(f, path, "version", 1, CHECKPOINT_FORMAT_VERSION);
    io_model_attrs_read(f, path, batch, &info->model);
    info->compact = (int)h5_get_count(f, path, "compact", 0, 1);
    info->beta = h5_get_real(f, path, "beta", 0, 1e12);
    info->lambda = h5_get_real(f, path, "lambda", -1e12, 1e12);
    info->step = h5_get_count(f, path, "step", 0, most);
    info->done = h5_get_str(f, "done");
    check_done(path, info->done);
    info->config = h5_get_str(f, "config");
    /* the model the attributes describe is built before its buffers are
     * read: its size must be one the file can hold (4 bytes a parameter),
     * so that a damaged count cannot make it allocate gigabytes */
    struct stat st;
    double most_param = stat(path, &st) == 0 ? (double)st.st_size / 4.0 : 0;
    int64_t n_param = h5_get_count(f, path, "n_param", 1, most_param);
    if (info->model.cfg.classes > n_param / 2 || info->model.cfg.in_channels > n_param)
        dnal_fatal(DNAL_EXIT_DATA, "%s: %lld classes or %lld input channels cannot fit %lld "
                   "parameters (damaged attributes?)", path, (long long)info->model.cfg.classes,
                   (long long)info->model.cfg.in_channels, (long long)n_param);
    info->latency = io_latency_attrs_read(f, path);
    if (H5Aexists(f, "run_id") > 0) {
        char *id = h5_get_str(f, "run_id");
        if (strlen(id) >= sizeof info->run_id)
            dnal_fatal(DNAL_EXIT_DATA, "%s: attribute run_id is too long", path);
        snprintf(info->run_id, sizeof info->run_id, "%s", id);
        free(id);
    }
    if (version >= 2) {
        info->stage_step = h5_get_count(f, path, "stage_step", 0, (double)info->step);
        info->log_since = h5_get_count(f, path, "log_since", 0, (double)info->stage_step);
        info->log_loss_sum = h5_get_real(f, path, "log_loss_sum", 0, 1e300);
        info->held = (int)h5_get_count(f, path, "held", 0, 1);
        info->top1_search = accuracy_attr(f, path, "top1_search");
        info->top1_pruned = accuracy_attr(f, path, "top1_pruned");
        info->world_size = (int)h5_get_count(f, path, "world_size", 1, 1 << 24);
        info->log_rows = (dnal_log_rows){h5_get_count(f, path, "log_steps", 0, most),
                                         h5_get_count(f, path, "log_gates", 0, most),
                                         h5_get_count(f, path, "log_eval", 0, most)};
        info->eval_pending = H5Aexists(f, "eval_pending") > 0 &&
                             h5_get_count(f, path, "eval_pending", 0, 1) == 1;
        if (info->eval_pending && info->stage_step == 0)
            dnal_fatal(DNAL_EXIT_DATA, "%s: attribute eval_pending = 1 outside a stage", path);
    } else {
        info->top1_search = info->top1_pruned = NAN;
    }
}

/* masks are 0 or 1, alpha and the momenta finite: a damaged value would
 * be trained on silently */
static void check_values(const char *path, const char *what, const float *v, size_t n, int mask)
{
    for (size_t i = 0; i < n; i++)
        if (mask ? v[i] != 0.0f && v[i] != 1.0f : !isfinite(v[i]))
            dnal_fatal(DNAL_EXIT_DATA, "%s: %s[%zu] = %g is not %s", path, what, i, (double)v[i],
                       mask ? "0 or 1" : "finite");
}

/* The network the attributes describe, counted before any buffer of it
 * exists: its gated channels must be the values /dense/mask holds, and a
 * dense checkpoint's parameters its n_param (both bounded by the file's
 * size), so that a damaged width or model cannot make the build allocate
 * gigabytes (fuzz_ckattr: width 60 for a width 0.25 network, 1.7 GB) */
static void check_model_fits(const dnal_ctx *ctx, hid_t f, const char *path,
                             const dnal_checkpoint_info *info)
{
    dnal_ctx counting = *ctx;
    counting.count_only = 1;
    dnal_net *shape = dnal_model_build(&counting, &info->model.cfg);
    size_t gates = shape->n_gates, param = shape->n_param;
    dnal_net_destroy(shape);
    size_t stored = h5_dataset_count(f, "/dense/mask", sizeof(float));
    if (stored != gates)
        dnal_fatal(DNAL_EXIT_DATA, "%s: /dense/mask holds %zu values, but the model its attributes "
                   "describe (%s, width %g) has %zu gated channels (damaged attributes?)", path,
                   stored, info->model.cfg.name, info->model.cfg.width, gates);
    if (!info->compact || gates == 0)
        check_count(f, path, "n_param", param);
}

dnal_net *dnal_checkpoint_load(const dnal_ctx *ctx, const char *path, int64_t batch,
                               dnal_checkpoint_info *info, dnal_arch_record *rec)
{
    hid_t f = open_checkpoint(path);
    read_info(f, path, batch, info);
    check_model_fits(ctx, f, path, info);
    dnal_net *net = dnal_model_build(ctx, &info->model.cfg);
    info->model.dense.flops = dnal_net_cost(net, NULL).flops;
    info->model.dense.params = dnal_net_cost(net, NULL).params;
    h5_read_f32(f, "/dense/mask", net->mask, net->n_gates);
    check_values(path, "/dense/mask", net->mask, net->n_gates, 1);
    info->alpha_momentum = dnal_calloc(sizeof *info->alpha_momentum * (net->n_gates + 1));
    if (info->compact) {
        if (rec)
            dnal_arch_record_of(rec, net);
        info->model.compact_authors = dnal_net_cost_as(net, net->mask, DNAL_COUNT_AUTHORS);
        info->model.compact = dnal_net_cost(net, net->mask);
        dnal_net *compact = dnal_net_compact(net, batch);
        dnal_net_destroy(net);
        net = compact;
    } else {
        h5_read_f32(f, "/dense/alpha", net->alpha, net->n_gates);
        h5_read_f32(f, "/dense/alpha_momentum", info->alpha_momentum, net->n_gates);
        check_values(path, "/dense/alpha", net->alpha, net->n_gates, 0);
        check_values(path, "/dense/alpha_momentum", info->alpha_momentum, net->n_gates, 0);
        info->model.compact = info->model.compact_authors = info->model.dense;
    }
    check_count(f, path, "n_param", net->n_param);
    check_count(f, path, "n_stats", net->n_stats);
    h5_read_f32(f, "/net/param", net->param, net->n_param);
    h5_read_f32(f, "/net/stats", net->stats, net->n_stats);
    check_values(path, "/net/param", net->param, net->n_param, 0);
    check_values(path, "/net/stats", net->stats, net->n_stats, 0);
    if (info->stage_step > 0) {
        info->weight_momentum = dnal_alloc(sizeof(float) * (net->n_param + 1));
        h5_read_f32(f, "/net/momentum", info->weight_momentum, net->n_param);
        check_values(path, "/net/momentum", info->weight_momentum, net->n_param, 0);
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

void dnal_checkpoint_model(const char *path, int64_t batch, dnal_model_info *model)
{
    hid_t f = open_checkpoint(path);
    memset(model, 0, sizeof *model);
    io_model_attrs_read(f, path, batch, model);
    H5Fclose(f);
}

char *dnal_checkpoint_config(const char *path)
{
    hid_t f = open_checkpoint(path);
    char *config = h5_get_str(f, "config");
    H5Fclose(f);
    return config;
}

