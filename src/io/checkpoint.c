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
    double n = h5_get_f64(f, what);
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

dnal_net *dnal_checkpoint_load(const dnal_ctx *ctx, const char *path, int64_t batch,
                               dnal_checkpoint_info *info, dnal_arch_record *rec)
{
    hid_t f = open_checkpoint(path);
    memset(info, 0, sizeof *info);
    io_model_attrs_read(f, path, batch, &info->model);
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
    info->alpha_momentum = dnal_calloc(sizeof *info->alpha_momentum * (net->n_gates + 1));
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
        info->weight_momentum = dnal_alloc(sizeof(float) * (net->n_param + 1));
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
    hid_t f = open_checkpoint(path);
    char *config = h5_get_str(f, "config");
    H5Fclose(f);
    return config;
}

