/* dnal search: the method (the beta continuation, the regulariser, the
 * architecture update, pruning) and a run: its stages (pretrain, search,
 * prune, finetune) over a network, its data, its ranks and its files.
 *
 * Output on stdout (rank 0; one key=value line each, grep-able in a SLURM
 * log; docs/design.md lists them):
 *   eval stage=pretrain epoch=3 top1=0.9012 top5=0.9987 loss=0.2811
 * plus progress lines, updated in place on a terminal. */
#ifndef DNAL_SEARCH_H
#define DNAL_SEARCH_H

#include <stdint.h>
#include <stdio.h>

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

/* ---- budgets (budget.c) ---- */

/* What a budget counts: the cost of `net` under gate values g (one per
 * gated channel, as alpha; NULL: the dense network), in any unit. The
 * lambda controller and the fit at prune see only this function, so any
 * cost (FLOPs, a latency model) plugs into both. */
typedef struct dnal_budget_cost {
    const char *name;    /* for messages: "flops" */
    double (*of)(void *arg, const dnal_net *net, const float *g);
    void *arg;
} dnal_budget_cost;

/* A budget: the cost and its target, a fraction of the dense network's
 * cost (0: no budget). */
typedef struct dnal_budget {
    dnal_budget_cost cost;
    double target;
} dnal_budget;

/* FLOPs (multiply-adds, dnal_net_cost) as a budget cost; counted the
 * authors' way (dnal_net_cost_as, DNAL_COUNT_AUTHORS). */
dnal_budget_cost dnal_budget_flops(void);
dnal_budget_cost dnal_budget_flops_authors(void);
/* A latency table's predicted time (dnal_latency_predict; which: train or
 * infer) as a budget cost; `use` must outlive the budget. */
typedef struct dnal_latency_use {
    const dnal_latency *tab; /* bound to the network the budget is asked about; NULL: none */
    int which;               /* DNAL_LATENCY_TRAIN or _INFER */
} dnal_latency_use;
dnal_budget_cost dnal_budget_latency(const dnal_latency_use *use);
/* The budget a configuration asks for: search.flops_target in FLOPs
 * (counted as search.flops_count says), or search.latency_target in the
 * time of `latency` (none while latency or its table is NULL). */
dnal_budget dnal_budget_of_config(const dnal_config *cfg, const dnal_latency_use *latency);
/* cost(g) / cost(dense) */
double dnal_budget_fraction(const dnal_budget *b, const dnal_net *net, const float *g);
/* A target below what the smallest network the prune rule allows costs
 * (one channel per gated layer, in multiples of `multiple`, 0 = the
 * channel block, and the ungated layers) can never be met, and the lambda
 * controller would close every gate chasing it: exit 1 naming the key and
 * that floor. */
void dnal_budget_check_reachable(const dnal_budget *b, dnal_net *net, int64_t multiple,
                                 const char *key);

/* Architecture state: alpha's momentum, lambda, beta, the budget. */
typedef struct dnal_arch {
    dnal_sgd opt;        /* momentum of alpha */
    double lambda, beta;
    int held;            /* beta was held at the last update */
    float *weight;       /* regulariser weight of each gated channel (mean 1) */
    float *g;            /* scratch: gate values */
    double flops_dense;
    dnal_budget budget;  /* target 0: lambda stays as configured */
    double budget_dense; /* the budget's cost of the dense network */
    dnal_latency_use latency;    /* search.latency_table (tab NULL: none), bound to the net */
    double latency_dense;        /* the dense network's predicted time, ms */
} dnal_arch;

void dnal_arch_init(dnal_arch *a, dnal_net *net, const dnal_config *cfg);
void dnal_arch_free(dnal_arch *a);
/* A latency table for the architecture (arch_latency.c): with
 * search.regularizer=latency each channel weighs the time one channel of
 * its gate saves (mean 1); with search.latency_target the budget is the
 * table's time; the expected time under the gates is then known. */
void dnal_arch_set_latency(dnal_arch *a, dnal_net *net, const dnal_config *cfg,
                           const dnal_latency *tab);
/* The predicted time under the gates at the current beta, as a fraction of
 * the dense network's (NaN without a table). */
double dnal_arch_expected_latency(dnal_arch *a, dnal_net *net);
/* lambda * sum_c w_c sigmoid(alpha_c) over unmasked channels, or with
 * on_gates lambda * sum_c w_c sigmoid(beta alpha_c) (while beta is held);
 * adds its gradient to net->alpha_grad (if add_gradient), returns the value. */
double dnal_arch_regularize(const dnal_arch *a, dnal_net *net, int on_gates, int add_gradient);
/* One architecture update from net->alpha_grad (the CE part): regulariser,
 * SGD with momentum on alpha, lambda adaptation to the budget;
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
/* Fraction of the gated channels open at the current beta: g m > 0.5. */
double dnal_arch_open_fraction(const dnal_arch *a, const dnal_net *net);

/* Masks from the gates: m_c &= sigmoid(beta*alpha_c) > threshold, at least
 * one channel per gated layer, kept counts rounded up to `multiple` (0: the
 * network's channel block, dnal_net_channel_block); except
 * that a removable branch (layer->branch, a supernet candidate) whose last
 * gate closes every channel is removed (all its gates masked off), while a
 * branch set (layer->branch_set) keeps at least its best branch. With a
 * budget (not NULL, target > 0): the masks then move to the largest network
 * whose cost is not above the target, closing the open channels with the
 * smallest alpha or opening the closed ones with the largest. */
void dnal_prune(dnal_net *net, double beta, double threshold, int64_t multiple,
                const dnal_budget *budget);
/* Removable branches whose last gate keeps no channel under the masks; the
 * number of branches in *total, the removed ones' last gate layers in
 * last_gates (room for *total; may be NULL). */
int dnal_removed_branches(const dnal_net *net, int *total, int *last_gates);
int64_t dnal_kept_channels(const dnal_net *net, const dnal_layer *gate);

/* ---- latency on this CPU (latency.c; docs/design.md, "Latency") ---- */

/* Median milliseconds of `steps` steps of net after one warm-up: forward,
 * backward and an SGD update (train; labels set), or forward alone (infer).
 * The weights and BN statistics are restored afterwards. */
double dnal_time_steps(dnal_net *net, int infer, int steps);
/* The latency table of model m (m->batch: the training batch of one
 * process) on this CPU at this thread count, every time the median of
 * `reps` runs; with dist (NULL: one process) the ranks measure side by
 * side, each point started together, as they share a machine in a run;
 * progress: a line per layer (NULL: none). */
dnal_latency *dnal_profile(const dnal_ctx *ctx, const dnal_model_cfg *m, uint64_t seed,
                           int reps, const dnal_dist *dist, FILE *progress);

/* ---- what a run is made of, for every command that trains or evaluates ---- */

/* The data module's configuration of one split from a run's configuration. */
dnal_data_cfg dnal_data_config(const dnal_config *cfg, dnal_split split);
/* The model a configuration asks for (model.name, width, gate_stem,
 * classifier_bn, path, no_gate) at this input; the ONNX file not yet
 * resolved. */
dnal_model_cfg dnal_model_config(const dnal_config *cfg, int64_t batch, int64_t in_channels,
                                 int64_t image_size, int64_t classes);
/* The model a run of cfg builds for dataset d (its train split): square
 * images (else exit 1), onnx: the file resolved (absolute path, SHA-256)
 * and its input and classes equal to the data's (else exit 1 naming both).
 * Every command that builds the configured network for data uses it. */
dnal_model_cfg dnal_model_for_data(const dnal_config *cfg, int64_t batch, const dnal_dataset *d);

/* One SGD update of every parameter of the layers that are not frozen;
 * weight decay on conv and linear parameters, not on BN (nor on alpha,
 * which is not in this buffer). */
void dnal_update_weights(dnal_net *net, dnal_sgd *opt, double lr, double weight_decay);

/* Accuracy and loss of `net` over a dataset split (labels: room for a
 * batch). Sharded: each rank of d (NULL: one process) takes a contiguous
 * part, the sums are added over the ranks. */
dnal_eval dnal_evaluate(dnal_net *net, const dnal_dataset *test, const dnal_pass *p,
                        int32_t *labels, const dnal_dist *d);

/* ---- a run ---- */

typedef struct dnal_run dnal_run; /* opaque */

/* Opens the data, builds and initialises the model (exits on bad input).
 * comm: the ranks that share the run (MPI_COMM_NULL: one process without
 * MPI); data.batch is split evenly over them, rank 0's weights broadcast. */
dnal_run *dnal_run_open(const dnal_config *cfg, MPI_Comm comm);
/* The run's files: continues the checkpoint `resume` (NULL: a new run,
 * from run.init if set), installs the stop signals, and on rank 0 opens
 * the run log (log.path). */
void dnal_run_start(dnal_run *r, const char *resume);
/* Runs the stages of run.stages in order (pretrain, search, prune,
 * finetune), skipping those done and continuing a stage resumed where it
 * stopped; checkpoints at stage ends and every checkpoint.every steps;
 * prints the summary line and the kept-channels table; marks the log
 * finished. */
void dnal_run_stages(dnal_run *r);
void dnal_run_close(dnal_run *r);
/* The layer, among those a step updates (not frozen), whose weight
 * gradient holds an Inf or NaN (the last such in the network), or NULL. */
const dnal_layer *dnal_nonfinite_gradient(const dnal_net *net);
/* Async-signal-safe: asks the run to checkpoint and stop (exit 75) at the
 * next step boundary; every rank stops at the same step. */
void dnal_run_request_stop(int signal);

#endif
