/* Subcommand dispatch and help. Only subcommands that exist are listed. */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "dnal/cli.h"
#include "dnal/core.h"

typedef struct subcommand {
    const char *name;
    const char *usage;
    const char *summary;
    int (*run)(int argc, char **argv);
} subcommand;

static const subcommand commands[] = {
    {"search", "dnal search [-c FILE | --resume CHECKPOINT_OR_DIR] [--set section.key=value ...]",
     "all stages of run.stages (pretrain, search, prune, finetune); no FILE = the built-in\n"
     "default run (ResNet-20 on Fashion-MNIST); -c NAME takes a shipped config by name\n"
     "(e.g. cifar10-resnet56). --resume continues a stopped run exactly from a\n"
     "checkpoint, or from the newest in a folder, with its configuration but this\n"
     "run's threads (--set may change keys); SIGUSR1 or SIGTERM checkpoints and exits 75",
     dnal_cmd_search},
    {"train", "dnal train [-c FILE | --resume CHECKPOINT_OR_DIR] [--set section.key=value ...]",
     "plain training (gates off): the pretrain stage alone, with the search's config keys",
     dnal_cmd_train},
    {"export", "dnal export CHECKPOINT -o MODEL.h5|MODEL.onnx [--format h5|onnx] [--fold-bn] [--set prune.channel_multiple=N] [--set prune.threshold=T]",
     "the compact network of a checkpoint: per-layer channel counts, weights and masks;\n"
     "a searched checkpoint from before pruning is pruned as the run would (--set\n"
     "prune.* changes that), one never searched is exported dense",
     dnal_cmd_export},
    {"eval", "dnal eval MODEL.h5 [-c FILE] [--set data.*=...]",
     "accuracy of a compact model on the test split of data.dataset", dnal_cmd_eval},
    {"bench", "dnal bench [MODEL.h5] [-c FILE] [--set section.key=value ...] [--steps N] [--warmup N]\n"
     "           [--no-fuse]",
     "step timing breakdown and images/s on synthetic data: of a compact model file, or of\n"
     "a model zoo net (model.name, data.batch, data.image_size, run.threads); --no-fuse\n"
     "runs BN, gate, ReLU and add as separate layers",
     dnal_cmd_bench},
    {"profile", "dnal profile [-c FILE] [--set section.key=value ...] [-o TABLE.h5] [--reps N]",
     "the latency table of the run's dense model on this CPU and thread count: every\n"
     "layer's training step (forward and backward at data.batch) and inference time\n"
     "(forward at batch 1) against its channels, in steps of the layout's channel block,\n"
     "for search.latency_table (written to -o, else search.latency_table, else\n"
     "latency.h5); under mpirun each rank measures its share of the batch side by side",
     dnal_cmd_profile},
    {"prep", "dnal prep imagenet SRC_DIR OUT_DIR [--size N] [--per-shard K] [--max-pixels P]",
     "pack ImageNet's JPEG folders (SRC_DIR/train/<class>/, SRC_DIR/val/<class>/) into\n"
     "shards of RGB bytes for data.dataset=imagenet-shards: shorter side N (default 256),\n"
     "the longer cut to its central 4/3 N, K images a shard (default 5000); files that\n"
     "cannot be decoded are skipped and listed (as are images declaring more than P pixels,\n"
     "default data.max_pixels'); under mpirun the ranks share the shards",
     dnal_cmd_prep},
    {"config", "dnal config [-c FILE | --resume CHECKPOINT_OR_DIR] [--set section.key=value ...]\n"
     "           | dnal config --list",
     "the resolved configuration as INI (the defaults, then FILE, then each --set), as\n"
     "dnal search prints it (with --resume: as the resumed run would use it); --list: every key with its type, default, accepted values and\n"
     "what it does, one a line; no MPI, so it runs on a login node",
     dnal_cmd_config},
    {"info", "dnal info [-c FILE] [--set model.name=onnx --set model.path=F ...]",
     "versions, oneDNN ISA, threads, MPI; with keys, the model's plan: each layer, its gate, FLOPs, parameters",
     dnal_cmd_info},
};
enum { N_COMMANDS = sizeof commands / sizeof commands[0] };

static void usage(FILE *out)
{
    fprintf(out, "usage: dnal [--help] [--version] SUBCOMMAND [ARGS]\n\n"
                 "Differentiable Neural Architecture Learning on CPU clusters.\n\n"
                 "subcommands:\n");
    for (int i = 0; i < N_COMMANDS; i++) { /* a summary's later lines under its first */
        const char *line = commands[i].summary, *nl;
        fprintf(out, "  %-10s ", commands[i].name);
        while ((nl = strchr(line, '\n'))) {
            fprintf(out, "%.*s\n%13s", (int)(nl - line), line, "");
            line = nl + 1;
        }
        fprintf(out, "%s\n", line);
    }
    fprintf(out, "\n'dnal SUBCOMMAND --help' describes one subcommand.\n");
}

int dnal_cli_main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return DNAL_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return DNAL_EXIT_OK;
    }
    if (!strcmp(cmd, "--version")) {
        printf("dnal %s\n", PACKAGE_VERSION);
        return DNAL_EXIT_OK;
    }
    for (int i = 0; i < N_COMMANDS; i++) {
        if (strcmp(cmd, commands[i].name))
            continue;
        if (argc >= 3 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
            printf("usage: %s\n\n%s\n", commands[i].usage, commands[i].summary);
            return DNAL_EXIT_OK;
        }
        return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "dnal: unknown subcommand '%s'\n\n", cmd);
    usage(stderr);
    return DNAL_EXIT_USAGE;
}
