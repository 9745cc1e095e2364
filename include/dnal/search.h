/* dnal search: a run's stages (DESIGN.md section 1) over a network, its data
 * and its configuration: weight training (pretrain, finetune), and later the
 * architecture search and pruning.
 *
 * Output on stdout (one key=value line each, grep-able in a SLURM log):
 *   eval stage=pretrain epoch=3 top1=0.9012 top5=0.9987 loss=0.2811
 * plus progress lines, updated in place on a terminal. */
#ifndef DNAL_SEARCH_H
#define DNAL_SEARCH_H

#include <stdint.h>

#include "dnal/config.h"
#include "dnal/data.h"
#include "dnal/dist.h"
#include "dnal/models.h"
#include "dnal/optim.h"

/* The codes of the run log's stage columns; prune has only an evaluation. */
typedef enum dnal_stage {
    DNAL_STAGE_PRETRAIN = 0,
    DNAL_STAGE_SEARCH = 1,
    DNAL_STAGE_FINETUNE = 2,
    DNAL_STAGE_PRUNE = 3
} dnal_stage;
const char *dnal_stage_name(dnal_stage s);

typedef struct dnal_eval {
    double loss, top1, top5;
    int64_t count;
} dnal_eval;

/* ---- the method (arch.c, prune.c) ---- */

/* beta at search step `step` of `total_steps` (search.beta_update epoch|step) */
double dnal_beta_at(const dnal_config *cfg, int64_t step, int64_t total_steps,
                    int64_t steps_per_epoch);
/* The per-step schedule holds beta_final at this step (regulariser paused). */
int dnal_beta_held(const dnal_config *cfg, int64_t step, int64_t total_steps);

/* Architecture state: alpha's momentum, lambda, beta. */
typedef struct dnal_arch {
    dnal_sgd opt;        /* momentum of alpha */
    double lambda, beta;
    int held;            /* beta was held at the last update */
    float *weight;       /* regulariser weight of each gated channel (mean 1) */
    float *g;            /* scratch: gate values */
    float *ahead;        /* scratch: alpha after its momentum */
    double flops_dense;
} dnal_arch;

void dnal_arch_init(dnal_arch *a, dnal_net *net, const dnal_config *cfg);
void dnal_arch_free(dnal_arch *a);
/* lambda * sum_c w_c sigmoid(alpha_c) over unmasked channels, or with
 * on_gates lambda * sum_c w_c sigmoid(beta alpha_c) (while beta is held);
 * adds its gradient to net->alpha_grad (if add_gradient), returns the value. */
double dnal_arch_regularize(const dnal_arch *a, dnal_net *net, int on_gates, int add_gradient);
/* One architecture update from net->alpha_grad (the CE part): regulariser,
 * SGD with momentum on alpha, lambda adaptation to search.flops_target;
 * `held`: beta is held at beta_final (regulariser on the gates, momentum
 * restarted when the hold begins, lambda frozen).
 * Returns the regulariser's value. */
double dnal_arch_step(dnal_arch *a, dnal_net *net, const dnal_config *cfg, int held);
/* Expected FLOPs under the gates at the current beta, as a fraction of dense. */
double dnal_arch_expected_flops(dnal_arch *a, dnal_net *net);
/* Fraction of unmasked gates still undecided: |beta alpha| < 7. */
double dnal_arch_undecided(const dnal_arch *a, const dnal_net *net);
/* max over unmasked channels of min(g, 1 - g) at the current beta */
double dnal_arch_binary_gap(const dnal_arch *a, const dnal_net *net);

/* Masks from the gates: m_c &= sigmoid(beta*alpha_c) > threshold, at least
 * one channel per gated layer, kept counts rounded up to `multiple`; except
 * that a removable branch (layer->branch, a supernet candidate) whose last
 * gate closes every channel is removed (all its gates masked off), while a
 * branch set (layer->branch_set) keeps at least its best branch. With
 * flops_target > 0 (a fraction of the dense FLOPs): the masks then move to
 * the largest network not above it, closing the open channels with the
 * smallest alpha or opening the closed ones with the largest. */
void dnal_prune(dnal_net *net, double beta, double threshold, int64_t multiple,
                double flops_target);
/* Removable branches whose last gate keeps no channel under the masks; the
 * number of branches in *total, the removed ones' last gate layers in
 * last_gates (room for *total; may be NULL). */
int dnal_removed_branches(const dnal_net *net, int *total, int *last_gates);
int64_t dnal_kept_channels(const dnal_net *net, const dnal_layer *gate);

/* ---- a run ---- */

/* The architecture a search chose: every gated layer's mask. */
typedef struct dnal_arch_record {
    int n;
    char (*name)[64];
    int64_t *channels;   /* dense channels of each gated layer */
    float **mask;
} dnal_arch_record;

/* The record of the masks of every gated layer of `net`. */
void dnal_arch_record_of(dnal_arch_record *rec, const dnal_net *net);
void dnal_arch_record_free(dnal_arch_record *rec);

typedef struct dnal_run dnal_run;

/* One row of the run log's /steps: the means over the last log interval. */
typedef struct dnal_step_row {
    int64_t step;              /* steps done in the whole run */
    double epoch;              /* of the stage, fractional */
    dnal_stage stage;
    double loss, reg, lambda, lr, beta;
    double flops, params;      /* expected under the current gates (absolute) */
    double images_per_s;
} dnal_step_row;

/* Called by the run (on every rank) at points where io (log, checkpoints)
 * acts; any may be NULL. */
typedef struct dnal_run_hooks {
    void *arg;
    /* after each of pretrain, search, prune, finetune (r->done lists them) */
    void (*stage_end)(void *arg, dnal_run *r, const char *stage);
    /* every log.every steps and at each epoch's end */
    void (*step)(void *arg, dnal_run *r, const dnal_step_row *row);
    /* alpha: every log.gate_every search steps, at the search's start and end */
    void (*gates)(void *arg, dnal_run *r);
    /* every evaluation */
    void (*eval)(void *arg, dnal_run *r, dnal_stage stage, double epoch, const dnal_eval *e);
    /* every checkpoint.every steps, and when a signal stops the run
     * (BN statistics averaged over the ranks first) */
    void (*checkpoint)(void *arg, dnal_run *r, int stopping);
} dnal_run_hooks;

struct dnal_run {
    dnal_config cfg;          /* resolved */
    dnal_ctx *ctx;
    dnal_dataset *train, *test;
    dnal_model_cfg model;     /* the dense model */
    dnal_net *net;            /* dense, or compact after pruning */
    int compact;
    dnal_arch arch;
    dnal_arch_record record;  /* after pruning */
    dnal_cost dense_cost, compact_cost;
    double top1_search, top1_pruned, top1_final;
    dnal_dist dist;           /* the ranks sharing the run */
    int64_t batch;            /* global batch */
    int64_t local_batch, shard_first; /* this rank's slice of each global batch */
    unsigned char *arch_msg;  /* rank 0's alpha, beta, lambda, regulariser after an update */
    int64_t sync_checks;      /* dist.check_sync comparisons passed */
    int64_t steps_per_epoch;  /* full batches of the train split */
    int64_t *order;           /* this epoch's order of the train split */
    int64_t order_epoch;      /* the epoch `order` belongs to (-1: none) */
    int64_t *order_next;      /* the next epoch's, for batches decoded ahead */
    int64_t order_next_epoch;
    dnal_loader *loader;      /* streamed data with data.workers > 0, else NULL */
    int64_t loader_next;      /* the stage's next step to hand to the loader */
    uint8_t *skip_flags;      /* streamed data: the ranks' skipped files, merged */
    int64_t skipped_printed;
    int32_t *labels;
    int64_t step;             /* steps done in the whole run */
    int64_t stage_step;       /* steps done in the stage running (0 between stages) */
    dnal_sgd opt;             /* the weights' optimizer of the stage running */
    double log_loss_sum;      /* loss summed since the last progress line ... */
    int64_t log_since;        /* ... over this many steps (for exact resume) */
    float *resume_momentum;   /* weight momentum a resumed stage starts with */
    int resumed_world_size;   /* of the checkpoint resumed (0: not resumed) */
    int tty;                  /* progress updates one line in place */
    char done[64];            /* stages done, comma-separated */
    dnal_run_hooks hooks;
};

/* Opens the data, builds and initialises the model (exits on bad input).
 * comm: the ranks that share the run (MPI_COMM_NULL: one process without
 * MPI); data.batch is split evenly over them, rank 0's weights broadcast. */
dnal_run *dnal_run_open(const dnal_config *cfg, MPI_Comm comm);
void dnal_run_close(dnal_run *r);

/* Runs the stages of run.stages in order (pretrain, search, prune,
 * finetune), skipping those done (r->done) and continuing a stage resumed
 * at r->stage_step, and prints the summary line and the kept-channels table. */
void dnal_run_stages(dnal_run *r);
/* Async-signal-safe: asks the run to checkpoint and stop (exit 75) at the
 * next step boundary; every rank stops at the same step. */
void dnal_run_request_stop(int signal);

/* Trains the weights for one stage (pretrain or finetune) with SGD and the
 * stage's schedule, the gates in `mode`; evaluates after every epoch (and
 * after a fractional last one). Returns the last evaluation. */
dnal_eval dnal_run_train_weights(dnal_run *r, dnal_stage stage, const dnal_stage_cfg *sc,
                                 dnal_gate_mode mode);
/* The search stage: alpha trained with the beta continuation; conv and BN
 * frozen (staged mode) or everything trained (joint mode). */
dnal_eval dnal_run_search(dnal_run *r);
/* Masks from the gates, then the compact network replaces the dense one. */
dnal_eval dnal_run_prune(dnal_run *r);
/* The compact network of the current masks replaces the dense one. */
void dnal_run_compact(dnal_run *r);

/* One SGD update of every parameter of the layers that are not frozen;
 * weight decay on conv and linear parameters, not on BN (nor on alpha,
 * which is not in this buffer). */
void dnal_update_weights(dnal_net *net, dnal_sgd *opt, double lr, double weight_decay);

/* Accuracy and loss over the test split (inference BN, gates in p), BN
 * running statistics first averaged over the ranks. */
dnal_eval dnal_run_evaluate(dnal_run *r, const dnal_pass *p);
/* The same for any network over a dataset split; labels: batch entries.
 * Sharded: each rank of d (NULL: one process) takes a contiguous part. */
dnal_eval dnal_evaluate(dnal_net *net, const dnal_dataset *test, const dnal_pass *p,
                        int32_t *labels, const dnal_dist *d);

/* Prints the kept channels of every gated layer (after pruning). */
void dnal_run_print_arch(const dnal_run *r);

#endif
