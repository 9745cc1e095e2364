/* The key table: every key of the run configuration (docs/design.md, "Configuration keys")
 * with its section, name, type, the field of dnal_config it fills, its
 * default as INI text, the values it accepts and what it does in one line
 * (dnal config --list prints them). The defaults, the file and
 * --set parsers, validation and printing all walk this one table. */
#include <math.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "config_internal.h"

#define FIELD(f) .off = offsetof(dnal_config, f), .size = sizeof(((dnal_config *)0)->f)
#define K(sec, key, ty, f, dflt) .section = sec, .name = key, .type = ty, FIELD(f), .def = dflt
#define GE(x) .lo = (x), .hi = INFINITY
#define GT(x) .lo = (x), .hi = INFINITY, .flags = LO_OPEN
#define IN(a, b, fl) .lo = (a), .hi = (b), .flags = (fl)
#define ONE_OF(v) .values = v

/* pretrain and finetune share their keys; what: the stage in words; also:
 * how the search stage uses the key (pretrain's SGD settings drive it). */
#define STAGE_KEYS(sec, st, epochs_default, lr_default, what, also)                            \
    {K(sec, "epochs", T_FLOAT, st.epochs, epochs_default), GE(0),                              \
     .doc = "length of " what " in epochs (fractions allowed)"},                               \
    {K(sec, "lr", T_FLOAT, st.lr, lr_default), GE(0),                                          \
     .doc = "learning rate of the weights' SGD that the schedule starts from"},                \
    {K(sec, "momentum", T_FLOAT, st.momentum, "0.9"), IN(0, 1, HI_OPEN),                       \
     .doc = "SGD momentum of the weights" also},                                               \
    {K(sec, "nesterov", T_BOOL, st.nesterov, "false"),                                         \
     .doc = "Nesterov momentum instead of the plain kind" also},                               \
    {K(sec, "weight_decay", T_FLOAT, st.weight_decay, "1e-4"), GE(0),                          \
     .doc = "L2 weight decay of conv and linear weights, not of BN or alpha" also},            \
    {K(sec, "schedule", T_ENUM, st.schedule, "cosine"), ONE_OF("constant|step|cosine"),        \
     .doc = "learning rate over the stage: constant, step (times gamma at each milestone), "   \
            "cosine (to 0 at its end)"},                                                       \
    {K(sec, "milestones", T_LIST, st.milestones, ""), GE(0),                                   \
     .count_off = offsetof(dnal_config, st.n_milestones),                                      \
     .doc = "epochs of the stage where schedule = step multiplies the learning rate by gamma"}, \
    {K(sec, "gamma", T_FLOAT, st.gamma, "0.1"), GT(0),                                         \
     .doc = "factor of the learning rate at each milestone (schedule = step)"},                \
    {K(sec, "warmup_epochs", T_FLOAT, st.warmup_epochs, "0"), GE(0),                           \
     .doc = "the learning rate rises linearly from 0 over this many first epochs of the stage"}, \
    {K(sec, "cosine_before", T_FLOAT, st.cosine_before, "0"), GE(0),                           \
     .doc = "schedule = cosine: epochs of the cosine taken as passed when the stage starts "   \
            "(it starts below lr)"},                                                           \
    {K(sec, "cosine_after", T_FLOAT, st.cosine_after, "0"), GE(0),                             \
     .doc = "schedule = cosine: epochs of the cosine left when the stage ends (it ends above "  \
            "0)"},                                                                             \
    {K(sec, "momentum_reset", T_ENUM, st.momentum_reset, "never"), ONE_OF("never|epoch"),      \
     .doc = "epoch: the weights' SGD momentum restarts at 0 at each epoch (a new optimiser "    \
            "per epoch)"}

const key_def config_keys[] = {
    {K("data", "dataset", T_ENUM, data.dataset, "fashion-mnist"),
     ONE_OF("fashion-mnist|cifar10|imagenet|imagenet-shards|synthetic"),
     .doc = "the images: imagenet reads JPEG folders, imagenet-shards dnal prep's shards, "
            "synthetic is random"},
    {K("data", "path", T_STRING, data.path, ""),
     .doc = "dataset folder; empty = /usr/share/datasets/fashion-mnist, ./cifar-10-batches-bin; "
            "imagenet needs one"},
    {K("data", "batch", T_INT, data.batch, "128"), GE(1),
     .doc = "global batch: images per step over all ranks, split evenly (must divide by "
            "their number)"},
    {K("data", "image_size", T_INT, data.image_size, "0"), GE(0),
     .doc = "input side in pixels; 0 = the dataset's own (28, 32; imagenet 224); others only "
            "for imagenet* and synthetic"},
    {K("data", "augment", T_BOOL, data.augment, "true"),
     .doc = "random crops (4-pixel padding; flips too on cifar10) of training images; imagenet: "
            "random-resized crop and flip"},
    {K("data", "workers", T_INT, data.workers, "2"), GE(0),
     .doc = "threads decoding imagenet(-shards) batches two steps ahead (0: in the step); "
            "in-memory datasets ignore it"},
    {K("data", "train_limit", T_INT, data.train_limit, "0"), GE(0),
     .doc = "train on the first N samples of the training split only (0 = all)"},
    {K("data", "eval_limit", T_INT, data.eval_limit, "0"), GE(0),
     .doc = "evaluate on the first N samples of the test split only (0 = all)"},
    {K("data", "max_pixels", T_INT, data.max_pixels, "89478485"), GE(1),
     .doc = "imagenet: a JPEG whose header declares more pixels (width x height) is skipped "
            "before decoding (default: PIL's limit)"},
    {K("data", "crop_min_scale", T_FLOAT, data.crop_min_scale, "0.08"), IN(0, 1, LO_OPEN),
     .doc = "imagenet: the smallest area fraction of a training crop (RandomResizedCrop's "
            "scale = (this, 1))"},

    {K("model", "name", T_STRING, model.name, "resnet20"), .flags = NONEMPTY,
     .doc = "the network from the model zoo, e.g. resnet20, resnet56, vgg16, mobilenetv2, "
            "resnet50, proxyless-supernet; onnx: the file model.path"},
    {K("model", "width", T_FLOAT, model.width, "1.0"), GT(0),
     .doc = "multiplier of every layer's channel count (1 = the published network)"},
    {K("model", "path", T_STRING, model.path, ""),
     .doc = "name = onnx: the ONNX file (opsets 11-17) whose graph and initializers make the "
            "network"},
    {K("model", "no_gate", T_STRING, model.no_gate, ""),
     .doc = "name = onnx: Conv or BatchNormalization nodes (ONNX or layer names, "
            "comma-separated) left without a gate"},
    {K("model", "gate_stem", T_BOOL, model.gate_stem, "false"),
     .doc = "ResNets: a gate after the stem's BN too (the authors' ResNet-50)"},
    {K("model", "classifier_bn", T_BOOL, model.classifier_bn, "false"),
     .doc = "vgg16-imagenet: BN after each hidden linear layer (the authors' Linear-BN-ReLU "
            "classifier)"},

    STAGE_KEYS("pretrain", pretrain, "1.5", "0.1", "pretraining (gates off)",
               "; the search stage's weights use it too"),

    {K("search", "mode", T_ENUM, search.mode, "staged"), ONE_OF("staged|joint"),
     .doc = "staged: conv and BN frozen, alpha (and the classifier) train; joint: weights and "
            "alpha together"},
    {K("search", "epochs", T_FLOAT, search.epochs, "0.5"), GE(0),
     .doc = "length of the architecture search in epochs (fractions allowed)"},
    {K("search", "beta0", T_FLOAT, search.beta0, "1"), GT(0),
     .doc = "where beta's geometric rise starts (the gates are sigmoid(beta * alpha))"},
    {K("search", "beta_final", T_FLOAT, search.beta_final, "1e4"), GT(0), /* >= beta0: validate */
     .doc = "beta at the end of the search, reached geometrically from beta0 (must be >= "
            "beta0)"},
    {K("search", "beta_update", T_ENUM, search.beta_update, "step"), ONE_OF("epoch|step"),
     .doc = "beta grows once per search epoch or at every step"},
    {K("search", "beta_hold", T_FLOAT, search.beta_hold, "0.1"), IN(0, 1, HI_OPEN),
     .doc = "beta_update = step: the fraction of the search's steps, at its end, held at "
            "beta_final (lambda frozen)"},
    {K("search", "lambda", T_FLOAT, search.lambda, "0.012"), GE(0),
     .doc = "weight of the gate regulariser in the loss (the start value when flops_target "
            "adapts it)"},
    {K("search", "regularizer", T_ENUM, search.regularizer, "flops"),
     ONE_OF("count|flops|latency"),
     .doc = "what an open channel costs: count = 1 each, flops = the FLOPs one channel of its "
            "layer costs, latency = its time from latency_table (mean 1)"},
    {K("search", "flops_target", T_FLOAT, search.flops_target, "0"), IN(0, 1, 0),
     .doc = "FLOPs budget as a fraction of the dense network (0 = none): lambda adapts, prune "
            "fits the masks to it"},
    {K("search", "latency_table", T_STRING, search.latency_table, ""),
     .doc = "the latency table of this model on this CPU (dnal profile writes it): predicted "
            "and measured compact times; empty: none"},
    {K("search", "latency_target", T_FLOAT, search.latency_target, "0"), IN(0, 1, 0),
     .doc = "time budget as a fraction of the dense network's (latency_table's; 0 = none): "
            "lambda adapts, prune fits the masks to it"},
    {K("search", "latency_of", T_ENUM, search.latency_of, "train"), ONE_OF("train|infer"),
     .doc = "the time latency_table and the measurement at prune are about: a training step "
            "or inference at batch 1"},
    {K("search", "arch_lr", T_FLOAT, search.arch_lr, "0.01"), GE(0),
     .doc = "SGD learning rate of alpha, the gates' parameters"},
    {K("search", "arch_momentum", T_FLOAT, search.arch_momentum, "0.9"), IN(0, 1, HI_OPEN),
     .doc = "SGD momentum of alpha"},
    {K("search", "train_classifier", T_BOOL, search.train_classifier, "true"),
     .doc = "mode = staged: the linear layers (the classifier) train along with alpha"},
    {K("search", "classifier_lr", T_FLOAT, search.classifier_lr, "0.01"), GE(0),
     .doc = "constant learning rate of the weights the search trains (staged: the classifier; "
            "joint: all)"},
    {K("search", "weight_decay", T_FLOAT, search.weight_decay, "-1"), GE(-1),
     .doc = "L2 weight decay of the weights the search trains; -1 = pretrain.weight_decay "
            "(the authors: 0)"},
    {K("search", "momentum_reset", T_ENUM, search.momentum_reset, "never"),
     ONE_OF("never|epoch"),
     .doc = "epoch: alpha's and the searched weights' momentum restart at 0 at each search "
            "epoch (the authors' new optimiser per epoch)"},
    {K("search", "flops_count", T_ENUM, search.flops_count, "exact"), ONE_OF("exact|authors"),
     .doc = "how flops_target counts FLOPs: exact (what the compact network computes) or "
            "authors (a pruned residual-branch-end channel leaves the next conv's input too)"},

    {K("prune", "threshold", T_FLOAT, prune.threshold, "0.9"), IN(0, 1, LO_OPEN | HI_OPEN),
     .doc = "a channel stays if its gate sigmoid(beta * alpha) at the search's last beta is "
            "above this"},
    {K("prune", "channel_multiple", T_INT, prune.channel_multiple, "1"), GE(1),
     .flags = AUTO_ZERO,
     .doc = "each layer keeps a multiple of this many channels, rounded up; auto: the channel "
            "block of the layout oneDNN runs the network in on this CPU (dnal info)"},

    STAGE_KEYS("finetune", finetune, "1", "0.05", "fine-tuning (the pruned network)", ""),

    {K("log", "path", T_STRING, log.path, "run.h5"),
     .doc = "the HDF5 run log (steps, gate snapshots, evaluations, masks), written by rank 0"},
    {K("log", "every", T_INT, log.every, "20"), GE(1),
     .doc = "steps between progress lines and /steps rows (means since the last; also at "
            "each epoch's end)"},
    {K("log", "gate_every", T_INT, log.gate_every, "20"), GE(1),
     .doc = "search steps between snapshots of every alpha in /gates (also at the search's "
            "start and end)"},

    {K("checkpoint", "dir", T_STRING, checkpoint.dir, "checkpoints"),
     .doc = "folder of checkpoints: <stage>.h5 at each stage end, step-N.h5, model.h5 once "
            "pruned"},
    {K("checkpoint", "every", T_INT, checkpoint.every, "0"), GE(0),
     .doc = "steps of the whole run between step-N.h5 checkpoints (0: only at stage ends and "
            "on a signal)"},
    {K("checkpoint", "keep", T_INT, checkpoint.keep, "2"), GE(1),
     .doc = "how many step-N.h5 to keep, the newest; stage-end checkpoints always stay"},

    {K("run", "seed", T_U64, run.seed, "1"), GE(0),
     .doc = "seed of the initial weights, the sample order, the augmentation and synthetic "
            "data"},
    {K("run", "threads", T_INT, run.threads, "0"), GE(0),
     .doc = "OpenMP threads of each rank (0: OpenMP's default, OMP_NUM_THREADS or every "
            "core)"},
    {K("run", "dtype", T_ENUM, run.dtype, "f32"), ONE_OF("f32|bf16"),
     .doc = "number format of activations and the weights' working copy (bf16: needs "
            "avx512_core; master weights, gradients, optimiser, alpha stay f32)"},
    {K("run", "stages", T_STAGES, run.stages, "pretrain,search,prune,finetune"),
     ONE_OF("pretrain|search|prune|finetune"),
     .doc = "the stages to run, always in this order (e.g. search,prune,finetune with "
            "run.init)"},
    {K("run", "init", T_STRING, run.init, ""),
     .doc = "checkpoint whose weights (and masks) the run starts from; empty: fresh weights"},

    {K("dist", "allreduce", T_ENUM, dist.allreduce, "bucketed"), ONE_OF("bucketed|blocking"),
     .doc = "gradient averaging over the ranks: bucketed (overlaps backward) or blocking (one "
            "call after it)"},
    {K("dist", "bucket_kb", T_INT, dist.bucket_kb, "512"), GE(1),
     .doc = "size of one gradient bucket of the bucketed allreduce, in KiB"},
    {K("dist", "check_sync", T_BOOL, dist.check_sync, "false"),
     .doc = "compare alpha, masks, beta and lambda over the ranks after every architecture "
            "step and pruning (exit 3 if they differ)"},
};
const int config_n_keys = (int)(sizeof config_keys / sizeof config_keys[0]);


int config_section_known(const char *s, size_t len)
{
    config_trim(&s, &len);
    for (int i = 0; i < config_n_keys; i++)
        if (strlen(config_keys[i].section) == len && !memcmp(config_keys[i].section, s, len))
            return 1;
    return 0;
}

const key_def *config_find_key(const char *sec, size_t seclen, const char *name, size_t namelen)
{
    config_trim(&sec, &seclen);
    config_trim(&name, &namelen);
    for (int i = 0; i < config_n_keys; i++) {
        const key_def *k = &config_keys[i];
        if (strlen(k->section) == seclen && !memcmp(k->section, sec, seclen) &&
            strlen(k->name) == namelen && !memcmp(k->name, name, namelen))
            return k;
    }
    return NULL;
}

int config_find_value(const char *values, const char *s, size_t len, const char **v,
                      size_t *vlen)
{
    int i = 0;
    for (*v = values ? values : ""; **v; i++) {
        *vlen = strcspn(*v, "|");
        if (*vlen == len && !strncasecmp(*v, s, len))
            return i;
        *v += *vlen + ((*v)[*vlen] == '|');
    }
    return -1;
}
