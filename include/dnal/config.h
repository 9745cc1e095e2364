/* dnal config: the configuration of a run, one struct per INI section, and
 * its INI form (src/io/config*.c, from the one key table in config_keys.c).
 *
 * Every key has a default; a file and any number of `--set section.key=value`
 * overrides are applied in order; an unknown section or key, or a value that
 * does not parse or is out of range, is an error naming the key and where it
 * came from (FILE:LINE or --set), with exit code 1, before any work starts.
 * The keys, their defaults and ranges are listed by `dnal config --list` and
 * in docs/design.md. */
#ifndef DNAL_CONFIG_H
#define DNAL_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "dnal/optim.h"

enum { DNAL_PATH_MAX = 1024 };

typedef struct dnal_config {
    struct {
        char dataset[32];      /* fashion-mnist | cifar10 | imagenet | imagenet-shards | synthetic */
        char path[DNAL_PATH_MAX];
        int64_t batch;         /* global */
        int64_t image_size;    /* 0 = the dataset's own */
        int augment;
        int64_t workers;
        int64_t train_limit, eval_limit;
        int64_t max_pixels;    /* a JPEG's declared width x height, at most */
        double crop_min_scale; /* imagenet: RandomResizedCrop's smallest area fraction */
    } data;
    struct {
        char name[32];
        double width;
        char path[DNAL_PATH_MAX]; /* name = onnx: the file */
        char no_gate[512];        /* name = onnx: nodes left ungated, comma-separated */
        int gate_stem;         /* ResNets: a gate after the stem's BN */
        int classifier_bn;     /* vgg16-imagenet: BN after each hidden linear layer */
    } model;
    dnal_stage_cfg pretrain;
    struct {
        char mode[16];         /* staged | joint */
        double epochs;
        double beta0, beta_final;
        char beta_update[8];   /* epoch | step */
        double beta_hold;
        double lambda;
        char regularizer[8];   /* count | flops | latency */
        double flops_target;   /* 0 = off */
        char latency_table[DNAL_PATH_MAX]; /* dnal profile's table ("": none) */
        char latency_of[8];    /* train | infer: which of the table's times */
        double latency_target; /* 0 = off; a fraction of the dense step's time */
        double arch_lr, arch_momentum;
        int train_classifier;
        double classifier_lr;  /* SGD lr of the classifier while it trains in a staged search */
        double weight_decay;   /* of the weights the search trains; -1: pretrain's */
        char momentum_reset[8]; /* never | epoch: alpha's and the weights' momentum */
        char flops_count[8];   /* exact | authors: how flops_target counts FLOPs */
    } search;
    struct {
        double threshold;
        int64_t channel_multiple; /* 0 = auto: the channel block of the network's layout */
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
        char dtype[8];         /* f32 or bf16 (activations and working weights) */
        char stages[64];       /* comma-separated subset of pretrain,search,prune,finetune */
        char init[DNAL_PATH_MAX]; /* checkpoint whose weights (and masks) the run starts from */
    } run;
    struct {
        char allreduce[16];    /* bucketed (overlapped with backward) | blocking (one, for debugging) */
        int64_t bucket_kb;     /* gradient bucket size */
        int check_sync;        /* compare alpha, beta, lambda, masks across ranks after every update */
    } dist;
} dnal_config;

/* The built-in defaults (the default run of `dnal search`). */
void dnal_config_defaults(dnal_config *cfg);
/* Applies an INI file. Returns 0, or prints "dnal: error: FILE:LINE: ..." and returns 1. */
int dnal_config_load(dnal_config *cfg, const char *path);
/* Applies INI text (e.g. a checkpoint's stored configuration); origin names it. */
int dnal_config_load_text(dnal_config *cfg, const char *text, const char *origin);
/* Applies one "section.key=value". Returns 0, or prints the error and returns 1. */
int dnal_config_set(dnal_config *cfg, const char *assignment);
/* Checks the values together (e.g. a stage list of known names). 0 or 1 as above. */
int dnal_config_validate(const dnal_config *cfg);
/* The resolved configuration as INI text, every key, sections in table order. */
void dnal_config_write(const dnal_config *cfg, FILE *out);
/* The same into a newly allocated string (for the run log); free() it. */
char *dnal_config_text(const dnal_config *cfg);
/* Every key, one a line (dnal config --list): section.key, type, default,
 * accepted values and what the key does, in aligned columns. */
void dnal_config_list(FILE *out);
/* The number of keys: the lines dnal_config_list prints. */
int dnal_config_key_count(void);

#endif
