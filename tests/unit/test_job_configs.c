/* Every run config in jobs/configs/ loads, validates and names a model of
 * the zoo: a typo there would only show on a cluster. The authors' recipes
 * in jobs/configs/paper/ take the paper's value of every key where dnal's
 * default differs (docs/design.md, "Faithful mode"), and each network's own
 * choices (stem gate, classifier BN, cosines cut short, crop scale). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnal/io.h"
#include "dnal/models.h"
#include "tap.h"

static int load(const char *path, dnal_config *cfg)
{
    dnal_config_defaults(cfg);
    return dnal_config_load(cfg, path) == 0 && dnal_config_validate(cfg) == 0;
}

/* the shipped configs of dir: each loads, validates and names a zoo model */
static int check_folder(const char *dir)
{
    DIR *d = opendir(dir);
    if (!tap_ok(d != NULL, "open %s", dir))
        return 0;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".ini"))
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        dnal_config cfg;
        int ok = load(path, &cfg);
        tap_ok(ok && dnal_model_find(cfg.model.name) != NULL, "%s loads and names a known model (%s)",
               e->d_name, cfg.model.name);
        count++;
    }
    closedir(d);
    return count;
}

/* what every paper config shares: the authors' choices where dnal differs */
static int faithful(const dnal_config *c)
{
    return !strcmp(c->search.regularizer, "count") && !strcmp(c->search.beta_update, "epoch") &&
           c->search.beta0 == 1 && c->search.beta_final == 1e4 && c->search.epochs == 10 &&
           c->prune.channel_multiple == 1 && c->prune.threshold == 0.9 &&
           c->search.weight_decay == 0 && !strcmp(c->search.momentum_reset, "epoch") &&
           !strcmp(c->pretrain.momentum_reset, "epoch") &&
           !strcmp(c->finetune.momentum_reset, "epoch") && !strcmp(c->search.mode, "staged") &&
           c->search.train_classifier && c->search.arch_lr == 0.01 &&
           c->search.classifier_lr == 0.01 && c->search.arch_momentum == 0.9 &&
           !strcmp(c->search.flops_count, "authors") && c->search.flops_target == 0;
}

static void check_paper(const char *dir)
{
    static const struct {
        const char *file, *model;
        int gate_stem, classifier_bn;
        const char *pretrain_schedule;
        double pretrain_after, finetune_before, crop, lambda;
        int steps; /* finetune: milestones 11, 41 */
    } want[] = {
        {"cifar10-vgg16.ini", "vgg16", 0, 0, "constant", 0, 0, 0.08, 1e-4, 1},
        {"cifar10-resnet56.ini", "resnet56", 1, 0, "constant", 0, 0, 0.08, 5e-5, 1},
        {"imagenet-vgg16.ini", "vgg16-imagenet", 0, 1, "constant", 0, 0, 0.08, 1e-4, 1},
        {"imagenet-resnet50.ini", "resnet50", 1, 0, "constant", 0, 0, 0.08, 5e-5, 1},
        {"imagenet-mobilenetv2.ini", "mobilenetv2-imagenet", 0, 0, "cosine", 80, 30, 0.2, 1.2e-4, 0},
        {"imagenet-proxyless-supernet.ini", "proxyless-supernet", 0, 0, "cosine", 50, 40, 0.2, 5e-5,
         0},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, want[i].file);
        dnal_config c;
        if (!tap_ok(load(path, &c), "paper/%s loads", want[i].file))
            continue;
        tap_ok(faithful(&c),
               "paper/%s: count regulariser, beta per epoch over 10 epochs, no rounding, search "
               "weight decay 0, a new optimiser every epoch in every stage, FLOPs counted the "
               "authors' way", want[i].file);
        int steps = c.finetune.n_milestones == 2 && c.finetune.milestones[0] == 11 &&
                    c.finetune.milestones[1] == 41 && !strcmp(c.finetune.schedule, "step");
        int cosines = !strcmp(c.finetune.schedule, "cosine") &&
                      c.pretrain.cosine_after == want[i].pretrain_after &&
                      c.finetune.cosine_before == want[i].finetune_before;
        tap_ok(!strcmp(c.model.name, want[i].model) && c.model.gate_stem == want[i].gate_stem &&
                   c.model.classifier_bn == want[i].classifier_bn &&
                   !strcmp(c.pretrain.schedule, want[i].pretrain_schedule) &&
                   (want[i].steps ? steps : cosines) &&
                   fabs(c.data.crop_min_scale - want[i].crop) < 1e-12 &&
                   c.search.lambda == want[i].lambda,
               "paper/%s: %s, gate_stem %d, classifier_bn %d, pretrain %s, %s, crop scale from "
               "%g, lambda %g", want[i].file, c.model.name, c.model.gate_stem,
               c.model.classifier_bn, c.pretrain.schedule,
               want[i].steps ? "finetune /10 after epochs 11 and 41" : "cosines cut short",
               c.data.crop_min_scale, c.search.lambda);
    }
}

int main(void)
{
    const char *dir = getenv("CONFIGS");
    if (!dir)
        dir = "jobs/configs";
    int count = check_folder(dir);
    tap_ok(count >= 4, "%d run configs found", count);
    char paper[2048];
    snprintf(paper, sizeof paper, "%s/paper", dir);
    tap_ok(check_folder(paper) == 6, "6 authors' recipes in %s", paper);
    check_paper(paper);
    return tap_done();
}
