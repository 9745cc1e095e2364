/* The key table: every key of the run configuration (DESIGN.md section 5)
 * with its section, name, type, the field of dnal_config it fills, its
 * default as INI text and the values it accepts. The defaults, the file and
 * --set parsers, validation and printing all walk this one table. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "config_internal.h"

#define FIELD(f) .off = offsetof(dnal_config, f), .size = sizeof(((dnal_config *)0)->f)
#define K(sec, key, ty, f, dflt) .section = sec, .name = key, .type = ty, FIELD(f), .def = dflt
#define GE(x) .lo = (x), .hi = INFINITY
#define GT(x) .lo = (x), .hi = INFINITY, .flags = LO_OPEN
#define IN(a, b, fl) .lo = (a), .hi = (b), .flags = (fl)
#define ONE_OF(v) .values = v

/* pretrain and finetune share their keys. */
#define STAGE_KEYS(sec, st, epochs_default, lr_default)                                       \
    {K(sec, "epochs", T_FLOAT, st.epochs, epochs_default), GE(0)},                            \
    {K(sec, "lr", T_FLOAT, st.lr, lr_default), GE(0)},                                        \
    {K(sec, "momentum", T_FLOAT, st.momentum, "0.9"), IN(0, 1, HI_OPEN)},                     \
    {K(sec, "nesterov", T_BOOL, st.nesterov, "false")},                                       \
    {K(sec, "weight_decay", T_FLOAT, st.weight_decay, "1e-4"), GE(0)},                        \
    {K(sec, "schedule", T_ENUM, st.schedule, "cosine"), ONE_OF("constant|step|cosine")},      \
    {K(sec, "milestones", T_LIST, st.milestones, ""), GE(0),                                  \
     .count_off = offsetof(dnal_config, st.n_milestones)},                                    \
    {K(sec, "gamma", T_FLOAT, st.gamma, "0.1"), GT(0)},                                       \
    {K(sec, "warmup_epochs", T_FLOAT, st.warmup_epochs, "0"), GE(0)}

const key_def config_keys[] = {
    {K("data", "dataset", T_ENUM, data.dataset, "fashion-mnist"),
     ONE_OF("fashion-mnist|cifar10|imagenet|imagenet-shards|synthetic")},
    {K("data", "path", T_STRING, data.path, "")},
    {K("data", "batch", T_INT, data.batch, "128"), GE(1)},
    {K("data", "image_size", T_INT, data.image_size, "0"), GE(0)},
    {K("data", "augment", T_BOOL, data.augment, "true")},
    {K("data", "workers", T_INT, data.workers, "2"), GE(0)},
    {K("data", "train_limit", T_INT, data.train_limit, "0"), GE(0)},
    {K("data", "eval_limit", T_INT, data.eval_limit, "0"), GE(0)},

    {K("model", "name", T_STRING, model.name, "resnet20"), .flags = NONEMPTY},
    {K("model", "width", T_FLOAT, model.width, "1.0"), GT(0)},

    STAGE_KEYS("pretrain", pretrain, "1.5", "0.1"),

    {K("search", "mode", T_ENUM, search.mode, "staged"), ONE_OF("staged|joint")},
    {K("search", "epochs", T_FLOAT, search.epochs, "0.5"), GE(0)},
    {K("search", "beta0", T_FLOAT, search.beta0, "1"), GT(0)},
    {K("search", "beta_final", T_FLOAT, search.beta_final, "1e4"), GT(0)}, /* >= beta0: validate */
    {K("search", "beta_update", T_ENUM, search.beta_update, "step"), ONE_OF("epoch|step")},
    {K("search", "beta_hold", T_FLOAT, search.beta_hold, "0.1"), IN(0, 1, HI_OPEN)},
    {K("search", "lambda", T_FLOAT, search.lambda, "0.012"), GE(0)},
    {K("search", "regularizer", T_ENUM, search.regularizer, "flops"), ONE_OF("count|flops")},
    {K("search", "flops_target", T_FLOAT, search.flops_target, "0"), IN(0, 1, 0)},
    {K("search", "arch_lr", T_FLOAT, search.arch_lr, "0.01"), GE(0)},
    {K("search", "arch_momentum", T_FLOAT, search.arch_momentum, "0.9"), IN(0, 1, HI_OPEN)},
    {K("search", "train_classifier", T_BOOL, search.train_classifier, "true")},
    {K("search", "classifier_lr", T_FLOAT, search.classifier_lr, "0.01"), GE(0)},

    {K("prune", "threshold", T_FLOAT, prune.threshold, "0.9"), IN(0, 1, LO_OPEN | HI_OPEN)},
    {K("prune", "channel_multiple", T_INT, prune.channel_multiple, "1"), GE(1)},

    STAGE_KEYS("finetune", finetune, "1", "0.05"),

    {K("log", "path", T_STRING, log.path, "run.h5")},
    {K("log", "every", T_INT, log.every, "20"), GE(1)},
    {K("log", "gate_every", T_INT, log.gate_every, "20"), GE(1)},

    {K("checkpoint", "dir", T_STRING, checkpoint.dir, "checkpoints")},
    {K("checkpoint", "every", T_INT, checkpoint.every, "0"), GE(0)},
    {K("checkpoint", "keep", T_INT, checkpoint.keep, "2"), GE(1)},

    {K("run", "seed", T_U64, run.seed, "1"), GE(0)},
    {K("run", "threads", T_INT, run.threads, "0"), GE(0)},
    {K("run", "dtype", T_ENUM, run.dtype, "f32"), ONE_OF("f32"), .planned = "bf16"},
    {K("run", "stages", T_STAGES, run.stages, "pretrain,search,prune,finetune")},
    {K("run", "init", T_STRING, run.init, "")},

    {K("dist", "allreduce", T_ENUM, dist.allreduce, "bucketed"), ONE_OF("bucketed|blocking")},
    {K("dist", "bucket_kb", T_INT, dist.bucket_kb, "512"), GE(1)},
    {K("dist", "check_sync", T_BOOL, dist.check_sync, "false")},
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
