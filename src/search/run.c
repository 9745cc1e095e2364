/* A run: data, model, the stage loop (pretrain, search, finetune), pruning
 * into the compact network, evaluation and the summary. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <omp.h>

#include "dnal/search.h"

const char *dnal_stage_name(dnal_stage s)
{
    static const char *names[] = {"pretrain", "search", "finetune", "prune"};
    return s <= DNAL_STAGE_PRUNE ? names[s] : "?";
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

dnal_run *dnal_run_open(const dnal_config *cfg, MPI_Comm comm)
{
    dnal_run *r = calloc(1, sizeof *r);
    DNAL_ASSERT(r);
    r->cfg = *cfg;
    if (cfg->run.threads > 0)
        omp_set_num_threads((int)cfg->run.threads);
    dnal_dist_init(&r->dist, comm, !strcmp(cfg->dist.allreduce, "blocking"), cfg->dist.bucket_kb);
    r->batch = cfg->data.batch;
    if (!dnal_dist_shard(r->batch, r->dist.rank, r->dist.size, &r->shard_first, &r->local_batch))
        dnal_fatal(DNAL_EXIT_USAGE, "data.batch=%lld does not split evenly over %d ranks",
                   (long long)r->batch, r->dist.size);
    r->train = open_split(cfg, DNAL_SPLIT_TRAIN);
    r->test = open_split(cfg, DNAL_SPLIT_TEST);
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
    r->model = (dnal_model_cfg){.name = r->cfg.model.name, .batch = r->local_batch, .in_channels = c,
                                .image_size = h, .classes = dnal_dataset_classes(r->train),
                                .width = cfg->model.width};
    r->net = dnal_model_build(r->ctx, &r->model);
    dnal_model_init(r->net, cfg->run.seed);
    /* rank 0's initial weights on every rank */
    dnal_dist_bcast(&r->dist, r->net->param, sizeof(float) * r->net->n_param);
    dnal_dist_bcast(&r->dist, r->net->stats, sizeof(float) * r->net->n_stats);
    dnal_arch_init(&r->arch, r->net, &r->cfg);
    r->arch_msg = malloc(sizeof(float) * r->net->n_gates + 3 * sizeof(double));
    r->dense_cost = r->compact_cost = dnal_net_cost(r->net, NULL);
    r->top1_search = r->top1_pruned = r->top1_final = NAN;
    r->order = malloc(sizeof *r->order * (size_t)dnal_dataset_size(r->train));
    r->labels = malloc(sizeof *r->labels * (size_t)r->local_batch);
    DNAL_ASSERT(r->order && r->labels && r->arch_msg);
    r->order_epoch = r->order_next_epoch = -1;
    if (dnal_dataset_streamed(r->train)) {
        int64_t n = dnal_dataset_size(r->train), m = dnal_dataset_size(r->test);
        r->skip_flags = malloc((size_t)(n > m ? n : m));
        r->order_next = malloc(sizeof *r->order_next * (size_t)n);
        DNAL_ASSERT(r->skip_flags && r->order_next);
        if (cfg->data.workers > 0) /* two batches decoded ahead of the one in use */
            r->loader = dnal_loader_open(r->train, (int)cfg->data.workers, 3, r->local_batch);
    }
    /* in place on a terminal; not under a launcher (mpirun hands ranks a pty) */
    r->tty = isatty(STDOUT_FILENO) && !getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMI_SIZE") &&
             !getenv("PMIX_RANK") && !getenv("SLURM_PROCID");
    dnal_net_set_labels(r->net, r->labels);
    return r;
}

void dnal_arch_record_free(dnal_arch_record *rec)
{
    for (int i = 0; i < rec->n; i++)
        free(rec->mask[i]);
    free(rec->name);
    free(rec->channels);
    free(rec->mask);
    memset(rec, 0, sizeof *rec);
}

void dnal_arch_record_of(dnal_arch_record *rec, const dnal_net *net)
{
    dnal_arch_record_free(rec);
    for (int i = 0; i < net->n_layers; i++)
        rec->n += net->layers[i]->kind == DNAL_GATE;
    rec->name = calloc((size_t)rec->n + 1, sizeof *rec->name);
    rec->channels = calloc((size_t)rec->n + 1, sizeof *rec->channels);
    rec->mask = calloc((size_t)rec->n + 1, sizeof *rec->mask);
    DNAL_ASSERT(rec->name && rec->channels && rec->mask);
    for (int i = 0, k = 0; i < net->n_layers; i++) {
        const dnal_layer *l = net->layers[i];
        if (l->kind != DNAL_GATE)
            continue;
        snprintf(rec->name[k], sizeof rec->name[k], "%s", l->name);
        rec->channels[k] = (int64_t)l->n_gates;
        rec->mask[k] = malloc(sizeof(float) * l->n_gates);
        DNAL_ASSERT(rec->mask[k]);
        memcpy(rec->mask[k], net->mask + l->gate_off, sizeof(float) * l->n_gates);
        k++;
    }
}

void dnal_run_close(dnal_run *r)
{
    if (!r)
        return;
    dnal_arch_free(&r->arch);
    dnal_arch_record_free(&r->record);
    dnal_net_destroy(r->net);
    dnal_dataset_close(r->train);
    dnal_dataset_close(r->test);
    dnal_ctx_destroy(r->ctx);
    dnal_loader_close(r->loader);
    free(r->order);
    free(r->order_next);
    free(r->skip_flags);
    free(r->labels);
    free(r->arch_msg);
    free(r->resume_momentum);
    dnal_dist_free(&r->dist);
    free(r);
}

dnal_eval dnal_run_evaluate(dnal_run *r, const dnal_pass *p)
{
    dnal_dist_average(&r->dist, r->net->stats, r->net->n_stats);
    return dnal_evaluate(r->net, r->test, p, r->labels, &r->dist);
}

dnal_eval dnal_evaluate(dnal_net *net, const dnal_dataset *test, const dnal_pass *p,
                        int32_t *labels, const dnal_dist *d)
{
    int64_t n = dnal_dataset_size(test), batch = net->input->n, start = 0, count = n;
    if (d)
        dnal_dist_range(n, d->rank, d->size, &start, &count);
    double sums[3] = {0, 0, 0}; /* loss, top-1 and top-5 counts */
    float *images = dnal_tensor_data(net->input);
    dnal_net_set_labels(net, labels);
    for (int64_t first = start; first < start + count; first += batch) {
        int64_t rows = start + count - first < batch ? start + count - first : batch;
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

/* ------------------------------------------------------------ the loop */

/* what one stage does besides forward and backward */
typedef struct stage_plan {
    dnal_stage stage;
    double epochs;
    dnal_gate_mode mode;
    int search;                 /* beta schedule and architecture updates */
    dnal_lr_schedule sched;     /* weights (frozen layers skip the update) */
    double momentum, weight_decay;
    int nesterov;
} stage_plan;

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

/* step s of a stage of `total` steps into the network's input */
static void load_batch(dnal_run *r, int64_t s, int64_t total)
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

/* streamed data: every rank learns the files any rank found unusable (so
 * all skip them) and rank 0 reports the count when it grows */
static void merge_skipped(dnal_run *r)
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
        printf("data skipped train=%lld test=%lld (unreadable image files, named on stderr)\n",
               (long long)total[0], (long long)total[1]);
    r->skipped_printed = total[0] + total[1];
}

/* dist.check_sync: every rank holds the same alpha, masks, beta, lambda */
static void check_replicas(dnal_run *r)
{
    const dnal_net *net = r->net;
    double scalars[2] = {r->arch.beta, r->arch.lambda};
    if (!dnal_dist_same(&r->dist, net->alpha, sizeof(float) * net->n_gates) ||
        !dnal_dist_same(&r->dist, net->mask, sizeof(float) * net->n_gates) ||
        !dnal_dist_same(&r->dist, scalars, sizeof scalars))
        dnal_fatal(DNAL_EXIT_NUMERIC, "dist.check_sync: the ranks disagree on alpha, masks, beta or "
                   "lambda after step %lld", (long long)r->step);
    r->sync_checks++;
}

/* The architecture step (DESIGN.md section 4): alpha gradients summed to
 * rank 0, which averages them, adds the regulariser, updates alpha, lambda
 * (and holds beta, set by the schedule on every rank), then broadcasts
 * alpha, beta, lambda and the regulariser's value in one message. */
static double arch_update(dnal_run *r, int held)
{
    dnal_net *net = r->net;
    dnal_dist *d = &r->dist;
    size_t alpha_bytes = sizeof(float) * net->n_gates;
    double scalars[3] = {0, 0, 0};
    dnal_dist_reduce_to_root(d, net->alpha_grad, net->n_gates);
    if (d->rank == 0) {
        for (size_t c = 0; d->size > 1 && c < net->n_gates; c++)
            net->alpha_grad[c] /= (float)d->size;
        scalars[2] = dnal_arch_step(&r->arch, net, &r->cfg, held);
        scalars[0] = r->arch.beta;
        scalars[1] = r->arch.lambda;
        memcpy(r->arch_msg, net->alpha, alpha_bytes);
        memcpy(r->arch_msg + alpha_bytes, scalars, sizeof scalars);
    }
    if (d->size > 1) {
        dnal_dist_bcast(d, r->arch_msg, alpha_bytes + sizeof scalars);
        memcpy(net->alpha, r->arch_msg, alpha_bytes);
        memcpy(scalars, r->arch_msg + alpha_bytes, sizeof scalars);
        r->arch.beta = scalars[0];
        r->arch.lambda = scalars[1];
    }
    if (r->cfg.dist.check_sync)
        check_replicas(r);
    return scalars[2];
}

static void progress(const dnal_run *r, const stage_plan *sp, int64_t epoch, int64_t step,
                     double loss, double reg, double lr, double images_per_s, double elapsed_s,
                     double eta_s, int final)
{
    const char *stage = dnal_stage_name(sp->stage);
    printf("%sstage=%s epoch=%lld step=%lld/%lld loss=%.4f", r->tty ? "\r" : "", stage,
           (long long)epoch + 1, (long long)step, (long long)r->steps_per_epoch, loss);
    if (sp->search) {
        dnal_arch *a = (dnal_arch *)&r->arch;
        int64_t kept = 0;
        for (size_t c = 0; c < r->net->n_gates; c++)
            kept += 1.0 / (1.0 + exp(-a->beta * r->net->alpha[c])) * r->net->mask[c] > 0.5;
        printf(" reg=%.4f lambda=%.3g beta=%.4g kept=%.3f flops=%.3f", reg, a->lambda, a->beta,
               (double)kept / (double)r->net->n_gates, dnal_arch_expected_flops(a, r->net));
    } else if (r->compact) {
        printf(" flops=%.3f", r->compact_cost.flops / r->dense_cost.flops);
    }
    printf(" lr=%.4g images_per_s=%.0f elapsed=%.0fs eta=%.0fs%s", lr, images_per_s, elapsed_s,
           eta_s, r->tty && !final ? "\033[K" : "\n");
    if (r->tty && final)
        printf("\033[K");
    fflush(stdout);
}

/* FLOPs and parameters under the gates of pass p (the compact network's own) */
static dnal_cost current_cost(dnal_run *r, const dnal_pass *p)
{
    if (r->compact)
        return r->compact_cost;
    dnal_net_gate_values(r->net, p, r->arch.g);
    return dnal_net_cost(r->net, r->arch.g);
}

static void log_step(dnal_run *r, const stage_plan *sp, const dnal_pass *p, double epoch,
                     double loss, double reg, double lr, double images_per_s)
{
    if (!r->hooks.step)
        return;
    dnal_cost c = current_cost(r, p);
    dnal_step_row row = {.step = r->step, .epoch = epoch, .stage = sp->stage, .loss = loss,
                         .reg = reg, .lambda = sp->search ? r->arch.lambda : NAN, .lr = lr,
                         .beta = sp->search ? r->arch.beta : NAN, .flops = c.flops,
                         .params = c.params, .images_per_s = images_per_s};
    r->hooks.step(r->hooks.arg, r, &row);
}

static void log_eval(dnal_run *r, dnal_stage stage, double epoch, const dnal_eval *e)
{
    printf("eval stage=%s epoch=%g top1=%.4f top5=%.4f loss=%.4f\n", dnal_stage_name(stage), epoch,
           e->top1, e->top5, e->loss);
    fflush(stdout);
    if (r->hooks.eval)
        r->hooks.eval(r->hooks.arg, r, stage, epoch, e);
}

static volatile sig_atomic_t stop_signal; /* set by a signal handler */

void dnal_run_request_stop(int signal)
{
    stop_signal = signal;
}

/* The first layer whose weight gradient is not finite (after averaging,
 * the same on every rank), or NULL. Adding g * 0 keeps the sum at 0 unless
 * some g is Inf or NaN: one vectorised pass. */
static const dnal_layer *nonfinite_gradient(const dnal_net *net)
{
    float probe = 0.0f;
#pragma omp parallel for simd reduction(+ : probe) schedule(static)
    for (size_t i = 0; i < net->n_param; i++)
        probe += net->grad[i] * 0.0f;
    if (probe == 0.0f)
        return NULL;
    for (int i = net->n_layers - 1; i >= 0; i--) {
        const dnal_layer *l = net->layers[i];
        for (int k = 0; k < l->n_params && !l->frozen; k++)
            for (size_t j = 0; j < l->param[k].count; j++)
                if (!isfinite(net->grad[l->param[k].off + j]))
                    return l;
    }
    return net->layers[0];
}

static void check_finite(dnal_run *r, const stage_plan *sp, double loss)
{
    const dnal_layer *bad = nonfinite_gradient(r->net);
    if (!isfinite(loss) || bad)
        dnal_fatal(DNAL_EXIT_NUMERIC,
                   "non-finite %s at step %lld (stage %s, step %lld of the stage, layer %s); the "
                   "last checkpoint is intact",
                   isfinite(loss) ? "gradient" : "loss", (long long)r->step + 1,
                   dnal_stage_name(sp->stage), (long long)r->stage_step + 1,
                   isfinite(loss) ? bad->name : "loss");
}

/* every checkpoint.every steps, and on a signal (to any rank) at the same
 * step on every rank: checkpoint, then exit 75 */
static void checkpoint_or_stop(dnal_run *r)
{
    int every_due = r->cfg.checkpoint.every > 0 && r->step % r->cfg.checkpoint.every == 0;
    int stop = dnal_dist_any(&r->dist, stop_signal != 0);
    if (!every_due && !stop)
        return;
    dnal_dist_average(&r->dist, r->net->stats, r->net->n_stats);
    if (r->hooks.checkpoint)
        r->hooks.checkpoint(r->hooks.arg, r, stop);
    if (stop) {
        printf("stopped step=%lld signal: checkpointed, exit %d (resume with --resume)\n",
               (long long)r->step, DNAL_EXIT_CHECKPOINTED);
        dnal_exit_all(DNAL_EXIT_CHECKPOINTED);
    }
}

static void log_gates(dnal_run *r)
{
    if (r->hooks.gates)
        r->hooks.gates(r->hooks.arg, r);
}

static dnal_eval run_stage(dnal_run *r, const stage_plan *sp)
{
    dnal_net *net = r->net;
    const dnal_config *cfg = &r->cfg;
    dnal_pass train = {.training = 1, .gate_mode = sp->mode, .beta = (float)r->arch.beta};
    dnal_pass eval = train;
    eval.training = 0;
    dnal_sgd *opt = &r->opt;
    dnal_sgd_init(opt, net->n_param, sp->momentum, sp->nesterov);
    int64_t total = (int64_t)llround(sp->epochs * (double)r->steps_per_epoch);
    int64_t start = r->stage_step; /* > 0: a resumed stage */
    if (start > 0 && r->resume_momentum)
        memcpy(opt->velocity, r->resume_momentum, sizeof(float) * net->n_param);
    free(r->resume_momentum);
    r->resume_momentum = NULL;
    dnal_eval last = {.top1 = NAN};
    double t0 = omp_get_wtime(), t_last = t0, reg = 0;
    double loss_sum = start > 0 ? r->log_loss_sum : 0;
    int64_t every = cfg->log.every, since = start > 0 ? r->log_since : 0;
    dnal_dist_plan(&r->dist, net); /* buckets over the layers this stage trains */
    r->loader_next = start;        /* the loader starts with this stage's first step */
    if (start >= total && total > 0) /* resumed after the stage's last step */
        last = dnal_run_evaluate(r, &eval);
    for (int64_t s = start; s < total; s++) {
        int64_t epoch = s / r->steps_per_epoch, in_epoch = s % r->steps_per_epoch;
        double lr = dnal_lr_at(&sp->sched, (double)s / (double)r->steps_per_epoch);
        if (sp->search) {
            r->arch.beta = dnal_beta_at(cfg, s, total, r->steps_per_epoch);
            train.beta = eval.beta = (float)r->arch.beta;
        }
        if (sp->search && s == 0)
            log_gates(r); /* where the search starts */
        load_batch(r, s, total);
        dnal_net_forward(net, &train);
        double loss = dnal_softmax_ce_result(net->loss).loss;
        dnal_net_backward(net, &train, dnal_dist_grad_ready, &r->dist);
        dnal_dist_grad_finish(&r->dist, net);
        check_finite(r, sp, loss);
        dnal_update_weights(net, opt, lr, sp->weight_decay);
        if (sp->search)
            reg = arch_update(r, dnal_beta_held(cfg, s, total));
        r->step++;
        if (sp->search && ((s + 1) % cfg->log.gate_every == 0 || s + 1 == total))
            log_gates(r);
        loss_sum += loss;
        since++;
        int end_of_epoch = in_epoch + 1 == r->steps_per_epoch || s + 1 == total;
        if ((s + 1) % every == 0 || end_of_epoch) {
            double mean_loss = loss_sum / (double)since;
            dnal_dist_sum(&r->dist, &mean_loss, 1); /* over the ranks' slices */
            mean_loss /= (double)r->dist.size;
            double now = omp_get_wtime();
            double ips = (double)(since * r->batch) / (now - t_last);
            double eta = (now - t0) / (double)(s + 1) * (double)(total - s - 1);
            progress(r, sp, epoch, in_epoch + 1, mean_loss, reg, lr, ips, now - t0,
                     eta, end_of_epoch);
            log_step(r, sp, &train, (double)(s + 1) / (double)r->steps_per_epoch, mean_loss, reg,
                     lr, ips);
            t_last = now;
            loss_sum = 0;
            since = 0;
        }
        if (end_of_epoch) {
            last = dnal_run_evaluate(r, &eval);
            log_eval(r, sp->stage, (double)(s + 1) / (double)r->steps_per_epoch, &last);
            merge_skipped(r);
            t_last = omp_get_wtime(); /* evaluation time is not training throughput */
        }
        r->stage_step = s + 1;
        r->log_loss_sum = loss_sum;
        r->log_since = since;
        checkpoint_or_stop(r);
    }
    r->stage_step = 0;
    dnal_sgd_free(opt);
    return last;
}

static void stage_done(dnal_run *r, const char *stage)
{
    dnal_dist_average(&r->dist, r->net->stats, r->net->n_stats); /* what checkpoints hold */
    size_t n = strlen(r->done);
    snprintf(r->done + n, sizeof r->done - n, "%s%s", n ? "," : "", stage);
    if (r->hooks.stage_end)
        r->hooks.stage_end(r->hooks.arg, r, stage);
}

static void freeze(dnal_net *net, int conv_bn, int classifier)
{
    for (int i = 0; i < net->n_layers; i++) {
        dnal_layer *l = net->layers[i];
        l->frozen = l->kind == DNAL_LINEAR ? classifier : conv_bn;
    }
}

static stage_plan weights_plan(dnal_stage stage, const dnal_stage_cfg *sc, dnal_gate_mode mode)
{
    stage_plan sp = {.stage = stage, .epochs = sc->epochs, .mode = mode,
                     .momentum = sc->momentum, .weight_decay = sc->weight_decay,
                     .nesterov = sc->nesterov};
    sp.sched = (dnal_lr_schedule){.kind = dnal_lr_kind_parse(sc->schedule), .base = sc->lr,
                                  .epochs = sc->epochs, .milestones = sc->milestones,
                                  .n_milestones = sc->n_milestones, .gamma = sc->gamma,
                                  .warmup_epochs = sc->warmup_epochs};
    return sp;
}

dnal_eval dnal_run_train_weights(dnal_run *r, dnal_stage stage, const dnal_stage_cfg *sc,
                                 dnal_gate_mode mode)
{
    freeze(r->net, 0, 0);
    stage_plan sp = weights_plan(stage, sc, mode);
    return run_stage(r, &sp);
}

dnal_eval dnal_run_search(dnal_run *r)
{
    const dnal_config *cfg = &r->cfg;
    DNAL_ASSERT(!r->compact);
    int joint = !strcmp(cfg->search.mode, "joint");
    /* staged: conv and BN frozen; the classifier trains unless switched off */
    freeze(r->net, !joint, !joint && !cfg->search.train_classifier);
    stage_plan sp = weights_plan(DNAL_STAGE_SEARCH, &cfg->pretrain, DNAL_GATE_SEARCH);
    sp.epochs = cfg->search.epochs;
    sp.search = 1;
    sp.sched = (dnal_lr_schedule){.kind = DNAL_LR_CONSTANT, .base = cfg->search.classifier_lr};
    dnal_eval e = run_stage(r, &sp);
    freeze(r->net, 0, 0);
    r->top1_search = e.top1;
    printf("search_end beta=%.6g lambda=%.6g binary_gap=%.3g flops_expected=%.4f\n", r->arch.beta,
           r->arch.lambda, dnal_arch_binary_gap(&r->arch, r->net),
           dnal_arch_expected_flops(&r->arch, r->net));
    if (cfg->dist.check_sync)
        printf("check_sync ranks=%d checks=%lld identical=1\n", r->dist.size,
               (long long)r->sync_checks);
    fflush(stdout);
    return e;
}

void dnal_run_compact(dnal_run *r)
{
    DNAL_ASSERT(!r->compact);
    dnal_arch_record_of(&r->record, r->net);
    r->compact_cost = dnal_net_cost(r->net, r->net->mask);
    dnal_net *compact = dnal_net_compact(r->net, r->local_batch);
    dnal_net_destroy(r->net);
    r->net = compact;
    r->compact = 1;
    dnal_net_set_labels(r->net, r->labels);
}

dnal_eval dnal_run_prune(dnal_run *r)
{
    DNAL_ASSERT(!r->compact);
    /* decided on rank 0, the masks broadcast: every rank builds the same network */
    if (r->dist.rank == 0)
        dnal_prune(r->net, r->arch.beta, r->cfg.prune.threshold, r->cfg.prune.channel_multiple,
                   r->cfg.search.flops_target);
    dnal_dist_bcast(&r->dist, r->net->mask, sizeof(float) * r->net->n_gates);
    if (r->cfg.dist.check_sync)
        check_replicas(r);
    /* removable branches (supernet candidates) whose gates all closed */
    int branches = 0;
    int *gone = malloc(sizeof *gone * ((size_t)r->net->n_layers + 1));
    DNAL_ASSERT(gone);
    int removed = dnal_removed_branches(r->net, &branches, gone);
    if (branches > 0) {
        printf("prune removed_candidates=%d of %d\n", removed, branches);
        for (int k = 0; k < removed; k++) {
            const char *name = r->net->layers[gone[k]]->name, *dot = strrchr(name, '.');
            printf("prune removed %.*s\n", dot ? (int)(dot - name) : (int)strlen(name), name);
        }
    }
    free(gone);
    dnal_run_compact(r);
    dnal_pass eval = {.training = 0, .gate_mode = DNAL_GATE_OFF, .beta = 1};
    dnal_eval e = dnal_run_evaluate(r, &eval);
    r->top1_pruned = e.top1;
    log_eval(r, DNAL_STAGE_PRUNE, 0, &e);
    printf("prune flops=%.4f params=%.4f\n", r->compact_cost.flops / r->dense_cost.flops,
           r->compact_cost.params / r->dense_cost.params);
    fflush(stdout);
    return e;
}

void dnal_run_print_arch(const dnal_run *r)
{
    const dnal_arch_record *rec = &r->record;
    printf("%-28s %8s %8s %7s\n", "gated layer", "dense", "kept", "kept%");
    int64_t total = 0, kept = 0;
    for (int i = 0; i < rec->n; i++) {
        int64_t k = 0;
        for (int64_t c = 0; c < rec->channels[i]; c++)
            k += rec->mask[i][c] != 0.0f;
        printf("%-28s %8lld %8lld %6.1f%%\n", rec->name[i], (long long)rec->channels[i],
               (long long)k, 100.0 * (double)k / (double)rec->channels[i]);
        total += rec->channels[i];
        kept += k;
    }
    printf("%-28s %8lld %8lld %6.1f%%\n", "all", (long long)total, (long long)kept,
           total ? 100.0 * (double)kept / (double)total : 0.0);
}

static int in_list(const char *list, const char *name)
{
    char padded[128], want[32];
    snprintf(padded, sizeof padded, ",%s,", list);
    snprintf(want, sizeof want, ",%s,", name);
    return strstr(padded, want) != NULL;
}

/* a stage of run.stages not done yet (a resumed run skips the others) */
static int stage_to_run(const dnal_run *r, const char *name)
{
    return in_list(r->cfg.run.stages, name) && !in_list(r->done, name);
}

void dnal_run_stages(dnal_run *r)
{
    const dnal_config *cfg = &r->cfg;
    dnal_eval e = {.top1 = NAN};
    if (stage_to_run(r, "pretrain")) {
        e = dnal_run_train_weights(r, DNAL_STAGE_PRETRAIN, &cfg->pretrain, DNAL_GATE_OFF);
        stage_done(r, "pretrain");
    }
    if (stage_to_run(r, "search")) {
        if (r->compact)
            dnal_fatal(DNAL_EXIT_USAGE, "run.stages: cannot search a compact (pruned) network");
        e = dnal_run_search(r);
        stage_done(r, "search");
    }
    if (stage_to_run(r, "prune")) {
        if (r->compact)
            dnal_fatal(DNAL_EXIT_USAGE, "run.stages: the network is pruned already");
        e = dnal_run_prune(r);
        stage_done(r, "prune");
    }
    if (stage_to_run(r, "finetune")) {
        e = dnal_run_train_weights(r, DNAL_STAGE_FINETUNE, &cfg->finetune,
                                   r->compact ? DNAL_GATE_OFF : DNAL_GATE_PRUNED);
        stage_done(r, "finetune");
    }
    r->top1_final = e.top1;
    printf("summary flops_dense=%.0f flops_compact=%.0f params_dense=%.0f params_compact=%.0f "
           "top1_search=%.4f top1_pruned=%.4f top1_final=%.4f\n",
           r->dense_cost.flops, r->compact_cost.flops, r->dense_cost.params,
           r->compact_cost.params, r->top1_search, r->top1_pruned, r->top1_final);
    if (r->compact)
        dnal_run_print_arch(r);
    fflush(stdout);
}
