/* A run: opening and closing it, its data (the epoch orders, batches from
 * memory or through the loader, files skipped on any rank) and evaluation.
 * The stage loop is in stages.c, the run's files in run_io.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

const char *dnal_stage_name(dnal_stage s)
{
    static const char *names[] = {"pretrain", "search", "finetune", "prune"};
    return s <= DNAL_STAGE_PRUNE ? names[s] : "?";
}

dnal_data_cfg dnal_data_config(const dnal_config *cfg, dnal_split split)
{
    return (dnal_data_cfg){
        .name = cfg->data.dataset,
        .path = cfg->data.path,
        .image_size = cfg->data.image_size,
        .augment = cfg->data.augment,
        .limit = split == DNAL_SPLIT_TRAIN ? cfg->data.train_limit : cfg->data.eval_limit,
        .seed = cfg->run.seed,
        .max_pixels = cfg->data.max_pixels,
        .crop_min_scale = cfg->data.crop_min_scale};
}

static dnal_dataset *open_split(const dnal_config *cfg, dnal_split split)
{
    dnal_data_cfg d = dnal_data_config(cfg, split);
    return dnal_dataset_open(&d, split);
}

/* The model takes the train split's shape: the test split must have the
 * same one (else its samples would be written past the network's input)
 * and the same classes. */
static void check_splits_agree(const dnal_config *cfg, const dnal_dataset *train,
                               const dnal_dataset *test)
{
    int64_t c[2], h[2], w[2];
    dnal_dataset_shape(train, &c[0], &h[0], &w[0]);
    dnal_dataset_shape(test, &c[1], &h[1], &w[1]);
    int64_t k0 = dnal_dataset_classes(train), k1 = dnal_dataset_classes(test);
    if (c[0] != c[1] || h[0] != h[1] || w[0] != w[1] || k0 != k1)
        dnal_fatal(DNAL_EXIT_DATA,
                   "data.path %s (%s): the test split holds %lldx%lldx%lld images of %lld classes, "
                   "the train split %lldx%lldx%lld of %lld: both must agree",
                   cfg->data.path[0] ? cfg->data.path : "(default)", dnal_dataset_name(train),
                   (long long)c[1], (long long)h[1], (long long)w[1], (long long)k1,
                   (long long)c[0], (long long)h[0], (long long)w[0], (long long)k0);
    const char *why = dnal_dataset_same_classes(train, test);
    if (why)
        dnal_fatal(DNAL_EXIT_DATA, "data.path %s: %s", cfg->data.path, why);
}

dnal_model_cfg dnal_model_config(const dnal_config *cfg, int64_t batch, int64_t in_channels,
                                 int64_t image_size, int64_t classes)
{
    dnal_model_cfg m = {.name = cfg->model.name, .batch = batch, .in_channels = in_channels,
                        .image_size = image_size, .classes = classes, .width = cfg->model.width,
                        .gate_stem = cfg->model.gate_stem,
                        .classifier_bn = cfg->model.classifier_bn};
    snprintf(m.path, sizeof m.path, "%s", cfg->model.path);
    snprintf(m.no_gate, sizeof m.no_gate, "%s", cfg->model.no_gate);
    return m;
}

dnal_model_cfg dnal_model_for_data(const dnal_config *cfg, int64_t batch, const dnal_dataset *d)
{
    int64_t c, h, w;
    dnal_dataset_shape(d, &c, &h, &w);
    if (h != w)
        dnal_fatal(DNAL_EXIT_USAGE, "%s: images are %lldx%lld; models take square images",
                   dnal_dataset_name(d), (long long)h, (long long)w);
    dnal_model_cfg m = dnal_model_config(cfg, batch, c, h, dnal_dataset_classes(d));
    dnal_model_resolve(&m); /* onnx: the file's absolute path and SHA-256 */
    if (!strcmp(m.name, DNAL_MODEL_ONNX)) { /* its input against the data, before building */
        int64_t fc, fs, fk;
        dnal_onnx_shape(m.path, m.no_gate, &fc, &fs, &fk);
        if (fc != c || fs != h || fk != m.classes)
            dnal_fatal(DNAL_EXIT_USAGE, "model.path %s takes %lldx%lldx%lld images of %lld classes; "
                       "data.dataset %s gives %lldx%lldx%lld images of %lld classes",
                       m.path, (long long)fc, (long long)fs, (long long)fs, (long long)fk,
                       dnal_dataset_name(d), (long long)c, (long long)h, (long long)w,
                       (long long)m.classes);
    }
    return m;
}

/* the train split's shape as the model's input; every rank builds the same */
static void open_model(dnal_run *r)
{
    r->model = dnal_model_for_data(&r->cfg, r->local_batch, r->train);
    snprintf(r->cfg.model.path, sizeof r->cfg.model.path, "%s", r->model.path); /* stored so */
    r->net = dnal_model_build(r->ctx, &r->model);
    dnal_model_start(r->net, &r->model, r->cfg.run.seed); /* onnx: the file's initializers */
    /* rank 0's initial weights on every rank */
    dnal_dist_bcast(&r->dist, r->net->param, sizeof(float) * r->net->n_param);
    dnal_dist_bcast(&r->dist, r->net->stats, sizeof(float) * r->net->n_stats);
    dnal_arch_init(&r->arch, r->net, &r->cfg);
    r->dense_cost = r->compact_cost = r->compact_authors = dnal_net_cost(r->net, NULL);
}

/* The run's buffers, carved from one block: the epoch orders (the next
 * epoch's too with streamed data, decoded across the boundary), the labels
 * of a batch, the architecture message, the skipped files' flags. */
static void open_buffers(dnal_run *r)
{
    int64_t n = dnal_dataset_size(r->train), m = dnal_dataset_size(r->test);
    int streamed = dnal_dataset_streamed(r->train);
    dnal_arena *a = &r->buffers;
    size_t order = dnal_arena_reserve(a, sizeof *r->order * (size_t)n);
    size_t order_next = streamed ? dnal_arena_reserve(a, sizeof *r->order_next * (size_t)n) : 0;
    size_t labels = dnal_arena_reserve(a, sizeof *r->labels * (size_t)r->local_batch);
    size_t msg = dnal_arena_reserve(a, sizeof(float) * r->net->n_gates + 3 * sizeof(double));
    size_t skip = streamed ? dnal_arena_reserve(a, (size_t)(n > m ? n : m)) : 0;
    dnal_arena_commit(a);
    r->order = dnal_arena_at(a, order);
    r->order_next = streamed ? dnal_arena_at(a, order_next) : NULL;
    r->labels = dnal_arena_at(a, labels);
    r->arch_msg = dnal_arena_at(a, msg);
    r->skip_flags = streamed ? dnal_arena_at(a, skip) : NULL;
    dnal_net_set_labels(r->net, r->labels);
}

dnal_run *dnal_run_open(const dnal_config *cfg, MPI_Comm comm)
{
    dnal_stop_install(); /* before anything slow: loading, building, resuming */
    dnal_run *r = dnal_calloc(sizeof *r);
    r->cfg = *cfg;
    dnal_set_threads(cfg->run.threads);
    dnal_dist_init(&r->dist, comm, !strcmp(cfg->dist.allreduce, "blocking"), cfg->dist.bucket_kb);
    r->batch = cfg->data.batch;
    if (!dnal_dist_shard(r->batch, r->dist.rank, r->dist.size, &r->shard_first, &r->local_batch))
        dnal_fatal(DNAL_EXIT_USAGE, "data.batch=%lld does not split evenly over %d ranks",
                   (long long)r->batch, r->dist.size);
    r->ctx = dnal_ctx_create_for(cfg->run.dtype); /* refuses bf16 before any work */
    if (!strcmp(cfg->model.name, DNAL_MODEL_ONNX)) { /* refusals before the data load */
        int64_t c, s, k;
        dnal_onnx_shape(cfg->model.path, cfg->model.no_gate, &c, &s, &k);
    }
    r->train = open_split(cfg, DNAL_SPLIT_TRAIN);
    dnal_stop_check("loading the training data");
    r->test = open_split(cfg, DNAL_SPLIT_TEST);
    dnal_stop_check("loading the test data");
    check_splits_agree(cfg, r->train, r->test);
    r->steps_per_epoch = dnal_dataset_size(r->train) / r->batch;
    if (r->steps_per_epoch < 1)
        dnal_fatal(DNAL_EXIT_USAGE, "data.batch=%lld is larger than the %lld training samples",
                   (long long)r->batch, (long long)dnal_dataset_size(r->train));
    r->order_epoch = r->order_next_epoch = -1;
    r->top1_search = r->top1_pruned = r->top1_final = NAN;
    open_model(r);
    dnal_stop_check("building the network");
    open_buffers(r);
    run_latency_open(r);
    if (dnal_dataset_streamed(r->train) && cfg->data.workers > 0) /* two batches ahead */
        r->loader = dnal_loader_open(r->train, (int)cfg->data.workers, 3, r->local_batch);
    /* in place on a terminal; not under a launcher (mpirun hands ranks a pty) */
    r->tty = isatty(STDOUT_FILENO) && !getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMI_SIZE") &&
             !getenv("PMIX_RANK") && !getenv("SLURM_PROCID");
    return r;
}

void dnal_run_close(dnal_run *r)
{
    if (!r)
        return;
    dnal_runlog_close(r->log);
    dnal_arch_free(&r->arch);
    dnal_arch_record_free(&r->record);
    dnal_latency_free(r->latency);
    dnal_net_destroy(r->net);
    dnal_dataset_close(r->train);
    dnal_dataset_close(r->test);
    dnal_ctx_destroy(r->ctx);
    dnal_loader_close(r->loader);
    dnal_arena_release(&r->buffers);
    dnal_free(r->resume_momentum);
    dnal_dist_free(&r->dist);
    dnal_free(r);
}

/* ------------------------------------------------------------ evaluation */

static dnal_eval evaluate(dnal_net *net, const dnal_dataset *test, const dnal_pass *p,
                          int32_t *labels, const dnal_dist *d, int stoppable);

dnal_eval run_evaluate(dnal_run *r, const dnal_pass *p, int stoppable)
{
    dnal_dist_average(&r->dist, r->net->stats, r->net->n_stats);
    return evaluate(r->net, r->test, p, r->labels, &r->dist, stoppable);
}

dnal_eval dnal_evaluate(dnal_net *net, const dnal_dataset *test, const dnal_pass *p,
                        int32_t *labels, const dnal_dist *d)
{
    return evaluate(net, test, p, labels, d, 0);
}

/* Every rank runs the same number of batches (the ranks' shares differ by
 * at most one sample), so a stoppable evaluation can agree on a stop
 * before each batch. */
static dnal_eval evaluate(dnal_net *net, const dnal_dataset *test, const dnal_pass *p,
                          int32_t *labels, const dnal_dist *d, int stoppable)
{
    int64_t n = dnal_dataset_size(test), batch = net->input->n, start = 0, count = n;
    int64_t c, h, w;
    dnal_dataset_shape(test, &c, &h, &w);
    if (c != net->input->c || h != net->input->h || w != net->input->w)
        dnal_fatal(DNAL_EXIT_DATA, "%s: test images are %lldx%lldx%lld, the network takes "
                   "%lldx%lldx%lld", dnal_dataset_name(test), (long long)c, (long long)h,
                   (long long)w, (long long)net->input->c, (long long)net->input->h,
                   (long long)net->input->w);
    if (d)
        dnal_dist_range(n, d->rank, d->size, &start, &count);
    double sums[3] = {0, 0, 0}; /* loss, top-1 and top-5 counts */
    float *images = dnal_tensor_data(net->input);
    dnal_net_set_labels(net, labels);
    int64_t most = d ? (n + d->size - 1) / d->size : n, batches = (most + batch - 1) / batch;
    for (int64_t b = 0, first = start; b < batches; b++, first += batch) {
        int stop = stoppable ? dnal_stop_requested() != 0 : 0;
        if (stoppable && (d ? dnal_dist_any(d, stop) : stop)) {
            dnal_softmax_ce_set_rows(net->loss, batch);
            return (dnal_eval){NAN, NAN, NAN, -1};
        }
        int64_t rows = start + count - first < batch ? start + count - first : batch;
        if (rows <= 0)
            continue;
        dnal_batch_fill(test, NULL, 0, first, rows, images, labels);
        dnal_softmax_ce_set_rows(net->loss, rows);
        dnal_net_forward(net, p);
        dnal_ce_result ce = dnal_softmax_ce_result(net->loss);
        sums[0] += ce.loss * (double)rows;
        sums[1] += (double)ce.correct1;
        sums[2] += (double)ce.correct5;
    }
    dnal_softmax_ce_set_rows(net->loss, batch);
    if (d)
        dnal_dist_sum(d, sums, 3);
    dnal_eval e = {sums[0] / (double)n, sums[1] / (double)n, sums[2] / (double)n, n};
    return e;
}

dnal_cost run_cost(dnal_run *r, const dnal_pass *p)
{
    if (r->compact)
        return r->compact_cost;
    dnal_net_gate_values(r->net, p, r->arch.g);
    return dnal_net_cost(r->net, r->arch.g);
}

void dnal_update_weights(dnal_net *net, dnal_sgd *opt, double lr, double weight_decay)
{
    for (int i = 0; i < net->n_layers; i++) {
        dnal_layer *l = net->layers[i];
        if (l->frozen)
            continue;
        for (int k = 0; k < l->n_params; k++) {
            double wd = l->param[k].role == DNAL_PARAM_NORM ? 0.0 : weight_decay;
            dnal_sgd_update(opt, lr, wd, net->param, net->grad, l->param[k].off, l->param[k].count);
        }
    }
}

/* ------------------------------------------------------------ batches */

/* the order of `epoch`: this epoch's, or the next one's while the loader
 * decodes across the boundary */
static const int64_t *order_of(dnal_run *r, int64_t epoch)
{
    if (r->order_epoch == epoch)
        return r->order;
    if (r->order_next && r->order_next_epoch == epoch)
        return r->order_next;
    int64_t *slot = r->order;
    if (r->order_next && r->order_epoch == epoch - 1) { /* keep the current epoch's */
        slot = r->order_next;
        r->order_next_epoch = epoch;
    } else {
        r->order_epoch = epoch;
    }
    dnal_epoch_order(r->cfg.run.seed, epoch, dnal_dataset_size(r->train), slot);
    return slot;
}

void run_load_batch(dnal_run *r, int64_t s, int64_t total)
{
    const int64_t spe = r->steps_per_epoch, slice = r->shard_first;
    float *images = dnal_tensor_data(r->net->input);
    if (!r->loader) {
        dnal_batch_fill(r->train, order_of(r, s / spe), s / spe, (s % spe) * r->batch + slice,
                        r->local_batch, images, r->labels);
        return;
    }
    for (; r->loader_next < total && r->loader_next <= s + 2; r->loader_next++) {
        int64_t e = r->loader_next / spe, in_epoch = r->loader_next % spe;
        dnal_loader_push(r->loader, e, order_of(r, e) + in_epoch * r->batch + slice,
                         r->local_batch);
    }
    dnal_loader_pop(r->loader, images, r->labels);
}

/* every rank learns the files any rank found unusable (so all skip them)
 * and rank 0 reports the count when it grows */
void run_merge_skipped(dnal_run *r)
{
    if (!r->skip_flags)
        return;
    dnal_dataset *split[2] = {r->train, r->test};
    int64_t total[2];
    for (int k = 0; k < 2; k++) {
        dnal_dataset_skip_flags(split[k], r->skip_flags);
        dnal_dist_or_bytes(&r->dist, r->skip_flags, (size_t)dnal_dataset_size(split[k]));
        dnal_dataset_merge_skip_flags(split[k], r->skip_flags);
        total[k] = dnal_dataset_skipped(split[k]);
    }
    if (total[0] + total[1] > r->skipped_printed)
        report_skipped(total[0], total[1]);
    r->skipped_printed = total[0] + total[1];
}
