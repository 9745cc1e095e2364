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

#include "dnal/data.h"
#include "dnal/models.h"
#include "dnal/optim.h"

enum { DNAL_PATH_MAX = 1024 };

/* The configuration of a run (DESIGN.md section 5), one struct per INI
 * section; io/config.c reads and writes its INI text. */
typedef struct dnal_config {
    struct {
        char dataset[32];      /* fashion-mnist | cifar10 | imagenet | imagenet-shards | synthetic */
        char path[DNAL_PATH_MAX];
        int64_t batch;         /* global */
        int64_t image_size;    /* 0 = the dataset's own */
        int augment;
        int64_t workers;
        int64_t train_limit, eval_limit;
    } data;
    struct {
        char name[32];
        double width;
    } model;
    dnal_stage_cfg pretrain;
    struct {
        char mode[16];         /* staged | joint */
        double epochs;
        double beta0, beta_final;
        char beta_update[8];   /* epoch | step */
        double beta_hold;
        double lambda;
        char regularizer[8];   /* count | flops */
        double flops_target;   /* 0 = off */
        double arch_lr, arch_momentum;
        int train_classifier;
        double classifier_lr;  /* SGD lr of the classifier while it trains in a staged search */
    } search;
    struct {
        double threshold;
        int64_t channel_multiple;
    } prune;
    dnal_stage_cfg finetune;
    struct {
        char path[DNAL_PATH_MAX];
        int64_t every, gate_every;
    } log;
    struct {
        char dir[DNAL_PATH_MAX];
        int64_t every, keep;
    } checkpoint;
    struct {
        uint64_t seed;
        int64_t threads;       /* 0 = OpenMP's default */
        char dtype[8];         /* f32 | bf16 */
        char stages[64];       /* comma-separated subset of pretrain,search,prune,finetune */
        char init[DNAL_PATH_MAX]; /* checkpoint whose weights (and masks) the run starts from */
    } run;
} dnal_config;


typedef enum dnal_stage { DNAL_STAGE_PRETRAIN = 0, DNAL_STAGE_SEARCH = 1, DNAL_STAGE_FINETUNE = 2 } dnal_stage;
const char *dnal_stage_name(dnal_stage s);

typedef struct dnal_eval {
    double loss, top1, top5;
    int64_t count;
} dnal_eval;

typedef struct dnal_run {
    dnal_config cfg;          /* resolved */
    dnal_ctx *ctx;
    dnal_dataset *train, *test;
    dnal_net *net;
    int64_t batch;            /* global batch */
    int64_t steps_per_epoch;  /* full batches of the train split */
    int64_t *order;           /* this epoch's order of the train split */
    int64_t order_epoch;      /* the epoch `order` belongs to (-1: none) */
    int32_t *labels;
    int64_t step;             /* steps done in the whole run */
    int tty;                  /* progress updates one line in place */
} dnal_run;

/* Opens the data, builds and initialises the model (exits on bad input). */
dnal_run *dnal_run_open(const dnal_config *cfg);
void dnal_run_close(dnal_run *r);

/* Trains the weights for one stage (pretrain or finetune) with SGD and the
 * stage's schedule, the gates in `mode`; evaluates after every epoch (and
 * after a fractional last one). Returns the last evaluation. */
dnal_eval dnal_run_train_weights(dnal_run *r, dnal_stage stage, const dnal_stage_cfg *sc,
                                 dnal_gate_mode mode);
/* One SGD update of every parameter of the layers that are not frozen;
 * weight decay on conv and linear parameters, not on BN (nor on alpha,
 * which is not in this buffer). */
void dnal_update_weights(dnal_net *net, dnal_sgd *opt, double lr, double weight_decay);

/* Accuracy and loss over the test split (inference BN, gates in p). */
dnal_eval dnal_run_evaluate(dnal_run *r, const dnal_pass *p);

#endif
