/* dnal io: the run configuration (INI), and later the HDF5 run log and
 * checkpoints.
 *
 * Configuration (DESIGN.md section 5): every key has a default; a file and
 * any number of `--set section.key=value` overrides are applied in order; an
 * unknown section or key, or a value that does not parse or is out of range,
 * is an error naming the key and where it came from (FILE:LINE or --set),
 * with exit code 1, before any work starts. */
#ifndef DNAL_IO_H
#define DNAL_IO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { DNAL_MAX_MILESTONES = 16, DNAL_PATH_MAX = 1024 };

/* One optimisation stage's weight optimizer and learning-rate schedule. */
typedef struct dnal_stage_cfg {
    double epochs;                           /* fractions allowed (e.g. 0.5) */
    double lr, momentum;
    int nesterov;
    double weight_decay;
    char schedule[16];                       /* constant | step | cosine */
    int n_milestones;
    double milestones[DNAL_MAX_MILESTONES];  /* epochs, comma-separated in the INI */
    double gamma;
    double warmup_epochs;                    /* linear warm-up (pretrain only in the INI) */
} dnal_stage_cfg;

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
    } run;
} dnal_config;

/* The built-in defaults (the default run of `dnal search`). */
void dnal_config_defaults(dnal_config *cfg);
/* Applies an INI file. Returns 0, or prints "dnal: error: FILE:LINE: ..." and returns 1. */
int dnal_config_load(dnal_config *cfg, const char *path);
/* Applies one "section.key=value". Returns 0, or prints the error and returns 1. */
int dnal_config_set(dnal_config *cfg, const char *assignment);
/* Checks the values together (e.g. a stage list of known names). 0 or 1 as above. */
int dnal_config_validate(const dnal_config *cfg);
/* The resolved configuration as INI text, every key, sections in DESIGN order. */
void dnal_config_write(const dnal_config *cfg, FILE *out);
/* The same into a newly allocated string (for the run log); free() it. */
char *dnal_config_text(const dnal_config *cfg);

#endif
