/* A run: data, model, the weight-training loop and evaluation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <omp.h>

#include "dnal/search.h"

const char *dnal_stage_name(dnal_stage s)
{
    static const char *names[] = {"pretrain", "search", "finetune"};
    return s <= DNAL_STAGE_FINETUNE ? names[s] : "?";
}

static dnal_dataset *open_split(const dnal_config *cfg, dnal_split split)
{
    dnal_data_cfg d = {.name = cfg->data.dataset,
                       .path = cfg->data.path,
                       .image_size = cfg->data.image_size,
                       .augment = cfg->data.augment,
                       .limit = split == DNAL_SPLIT_TRAIN ? cfg->data.train_limit : cfg->data.eval_limit,
                       .seed = cfg->run.seed};
    return dnal_dataset_open(&d, split);
}

dnal_run *dnal_run_open(const dnal_config *cfg)
{
    dnal_run *r = calloc(1, sizeof *r);
    DNAL_ASSERT(r);
    r->cfg = *cfg;
    if (cfg->run.threads > 0)
        omp_set_num_threads((int)cfg->run.threads);
    r->train = open_split(cfg, DNAL_SPLIT_TRAIN);
    r->test = open_split(cfg, DNAL_SPLIT_TEST);
    r->batch = cfg->data.batch;
    r->steps_per_epoch = dnal_dataset_size(r->train) / r->batch;
    if (r->steps_per_epoch < 1)
        dnal_fatal(DNAL_EXIT_USAGE, "data.batch=%lld is larger than the %lld training samples",
                   (long long)r->batch, (long long)dnal_dataset_size(r->train));
    int64_t c, h, w;
    dnal_dataset_shape(r->train, &c, &h, &w);
    if (h != w)
        dnal_fatal(DNAL_EXIT_USAGE, "%s: images are %lldx%lld; models take square images",
                   dnal_dataset_name(r->train), (long long)h, (long long)w);
    r->ctx = dnal_ctx_create();
    dnal_model_cfg m = {.name = cfg->model.name, .batch = r->batch, .in_channels = c,
                        .image_size = h, .classes = dnal_dataset_classes(r->train),
                        .width = cfg->model.width};
    r->net = dnal_model_build(r->ctx, &m);
    dnal_model_init(r->net, cfg->run.seed);
    r->order = malloc(sizeof *r->order * (size_t)dnal_dataset_size(r->train));
    r->labels = malloc(sizeof *r->labels * (size_t)r->batch);
    DNAL_ASSERT(r->order && r->labels);
    r->order_epoch = -1;
    r->tty = isatty(STDOUT_FILENO);
    dnal_net_set_labels(r->net, r->labels);
    return r;
}

void dnal_run_close(dnal_run *r)
{
    if (!r)
        return;
    dnal_net_destroy(r->net);
    dnal_dataset_close(r->train);
    dnal_dataset_close(r->test);
    dnal_ctx_destroy(r->ctx);
    free(r->order);
    free(r->labels);
    free(r);
}

dnal_eval dnal_run_evaluate(dnal_run *r, const dnal_pass *p)
{
    dnal_net *net = r->net;
    int64_t n = dnal_dataset_size(r->test);
    double loss = 0, top1 = 0, top5 = 0;
    float *images = dnal_tensor_data(net->input);
    for (int64_t first = 0; first < n; first += r->batch) {
        int64_t rows = n - first < r->batch ? n - first : r->batch;
        dnal_batch_fill(r->test, NULL, 0, first, rows, images, r->labels);
        dnal_softmax_ce_set_rows(net->loss, rows);
        dnal_net_forward(net, p);
        dnal_ce_result ce = dnal_softmax_ce_result(net->loss);
        loss += ce.loss * (double)rows;
        top1 += (double)ce.correct1;
        top5 += (double)ce.correct5;
    }
    dnal_softmax_ce_set_rows(net->loss, r->batch);
    dnal_eval e = {loss / (double)n, top1 / (double)n, top5 / (double)n, n};
    return e;
}

static void print_eval(dnal_stage stage, double epoch, const dnal_eval *e)
{
    printf("eval stage=%s epoch=%g top1=%.4f top5=%.4f loss=%.4f\n", dnal_stage_name(stage), epoch,
           e->top1, e->top5, e->loss);
    fflush(stdout);
}

static void progress(const dnal_run *r, dnal_stage stage, int64_t epoch, int64_t step, int64_t steps,
                     double loss, double lr, double images_per_s, double elapsed_s, double eta_s,
                     int final)
{
    printf("%sstage=%s epoch=%lld step=%lld/%lld loss=%.4f lr=%.4g images_per_s=%.0f elapsed=%.0fs "
           "eta=%.0fs%s",
           r->tty ? "\r" : "", dnal_stage_name(stage), (long long)epoch + 1, (long long)step,
           (long long)steps, loss, lr, images_per_s, elapsed_s, eta_s,
           r->tty && !final ? "\033[K" : "\n");
    if (r->tty && final)
        printf("\033[K");
    fflush(stdout);
}

/* Loads the batch of step `s` of `epoch` into the input tensor and labels. */
static void load_batch(dnal_run *r, int64_t epoch, int64_t s)
{
    if (r->order_epoch != epoch) {
        dnal_epoch_order(r->cfg.run.seed, epoch, dnal_dataset_size(r->train), r->order);
        r->order_epoch = epoch;
    }
    dnal_batch_fill(r->train, r->order, epoch, s * r->batch, r->batch,
                    dnal_tensor_data(r->net->input), r->labels);
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

dnal_eval dnal_run_train_weights(dnal_run *r, dnal_stage stage, const dnal_stage_cfg *sc,
                                 dnal_gate_mode mode)
{
    dnal_net *net = r->net;
    dnal_pass train = {.training = 1, .gate_mode = mode, .beta = 1.0f};
    dnal_pass eval = {.training = 0, .gate_mode = mode, .beta = 1.0f};
    dnal_lr_schedule sched = {.kind = dnal_lr_kind_parse(sc->schedule), .base = sc->lr,
                              .epochs = sc->epochs, .milestones = sc->milestones,
                              .n_milestones = sc->n_milestones, .gamma = sc->gamma,
                              .warmup_epochs = sc->warmup_epochs};
    dnal_sgd opt;
    dnal_sgd_init(&opt, net->n_param, sc->momentum, sc->nesterov);
    int64_t total = (int64_t)llround(sc->epochs * (double)r->steps_per_epoch);
    dnal_eval last = {0};
    double t0 = omp_get_wtime(), t_last = t0, loss_sum = 0;
    int64_t every = r->cfg.log.every, since = 0;
    for (int64_t s = 0; s < total; s++) {
        int64_t epoch = s / r->steps_per_epoch, in_epoch = s % r->steps_per_epoch;
        double lr = dnal_lr_at(&sched, (double)s / (double)r->steps_per_epoch);
        load_batch(r, epoch, in_epoch);
        dnal_net_forward(net, &train);
        double loss = dnal_softmax_ce_result(net->loss).loss;
        if (!isfinite(loss))
            dnal_fatal(DNAL_EXIT_NUMERIC, "non-finite loss at step %lld (stage %s, epoch %lld)",
                       (long long)r->step, dnal_stage_name(stage), (long long)epoch + 1);
        dnal_net_backward(net, &train, NULL, NULL);
        dnal_update_weights(net, &opt, lr, sc->weight_decay);
        r->step++;
        loss_sum += loss;
        since++;
        int end_of_epoch = in_epoch + 1 == r->steps_per_epoch || s + 1 == total;
        if ((s + 1) % every == 0 || end_of_epoch) {
            double now = omp_get_wtime();
            double ips = (double)(since * r->batch) / (now - t_last);
            double eta = (now - t0) / (double)(s + 1) * (double)(total - s - 1);
            progress(r, stage, epoch, in_epoch + 1, r->steps_per_epoch, loss_sum / (double)since, lr,
                     ips, now - t0, eta, end_of_epoch);
            t_last = now;
            loss_sum = 0;
            since = 0;
        }
        if (end_of_epoch) {
            last = dnal_run_evaluate(r, &eval);
            print_eval(stage, (double)(s + 1) / (double)r->steps_per_epoch, &last);
            t_last = omp_get_wtime(); /* evaluation time is not training throughput */
        }
    }
    dnal_sgd_free(&opt);
    return last;
}
