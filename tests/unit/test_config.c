/* The run configuration: defaults, files, --set, validation, the printed
 * INI and its round trip, and every error message (exact text, one line). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dnal/config.h"
#include "tap.h"

static char dir[256];
static char errpath[300]; /* where capture_begin() sends stderr */
static char errtext[8192]; /* what the last captured call printed on stderr */
static int saved_fd = -1;

static const char *tmp_path(const char *name)
{
    static char paths[4][512];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, sizeof paths[0], "%s/%s", dir, name);
    return p;
}

static const char *write_file(const char *name, const char *content)
{
    const char *path = tmp_path(name);
    FILE *f = fopen(path, "w");
    if (!f || fputs(content, f) < 0 || fclose(f) != 0) {
        printf("Bail out! cannot write %s\n", path);
        exit(1);
    }
    return path;
}

static void read_file(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "r");
    size_t len = f ? fread(buf, 1, n - 1, f) : 0;
    buf[len] = '\0';
    if (f)
        fclose(f);
}

/* Sends fd 2 to a file until capture_end(), which reads it into errtext. */
static void capture_begin(void)
{
    fflush(stderr);
    int fd = open(errpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
    saved_fd = dup(2);
    if (fd < 0 || saved_fd < 0 || dup2(fd, 2) < 0) {
        printf("Bail out! cannot redirect stderr\n");
        exit(1);
    }
    close(fd);
}

static void capture_end(void)
{
    fflush(stderr);
    dup2(saved_fd, 2);
    close(saved_fd);
    read_file(errpath, errtext, sizeof errtext);
}

static void show_mismatch(int ok, int rc, const char *want)
{
    if (!ok) {
        tap_diag("rc %d", rc);
        tap_diag("want: %s", want);
        tap_diag("got:  %s", errtext);
    }
}

/* Loading content must fail with "dnal: error: PATH:tail". */
static void load_error(const char *content, const char *tail)
{
    const char *path = write_file("bad.ini", content);
    dnal_config cfg;
    dnal_config_defaults(&cfg);
    capture_begin();
    int rc = dnal_config_load(&cfg, path);
    capture_end();
    char want[4096];
    snprintf(want, sizeof want, "dnal: error: %s:%s\n", path, tail);
    int ok = rc == 1 && !strcmp(errtext, want);
    tap_ok(ok, "file error: bad.ini:%s", tail);
    show_mismatch(ok, rc, want);
}

/* --set assignment must fail with "dnal: error: --set ASSIGNMENT: msg". */
static void set_error(const char *assignment, const char *shown, const char *msg)
{
    dnal_config cfg;
    dnal_config_defaults(&cfg);
    capture_begin();
    int rc = dnal_config_set(&cfg, assignment);
    capture_end();
    char want[4096];
    snprintf(want, sizeof want, "dnal: error: --set %s: %s\n", shown ? shown : assignment, msg);
    int ok = rc == 1 && !strcmp(errtext, want);
    tap_ok(ok, "--set error: --set %s: %s", shown ? shown : assignment, msg);
    show_mismatch(ok, rc, want);
}

/* Validating cfg must fail with "dnal: error: msg". */
static void validate_error(const dnal_config *cfg, const char *msg)
{
    capture_begin();
    int rc = dnal_config_validate(cfg);
    capture_end();
    char want[4096];
    snprintf(want, sizeof want, "dnal: error: %s\n", msg);
    int ok = rc == 1 && !strcmp(errtext, want);
    tap_ok(ok, "validate error: %s", msg);
    show_mismatch(ok, rc, want);
}

static int set_quiet(dnal_config *cfg, const char *assignment)
{
    capture_begin();
    int rc = dnal_config_set(cfg, assignment);
    capture_end();
    if (rc)
        tap_diag("unexpected: %s", errtext);
    return rc;
}

static const char default_text[] =
    "[data]\ndataset = fashion-mnist\npath =\nbatch = 128\nimage_size = 0\naugment = true\n"
    "workers = 2\ntrain_limit = 0\neval_limit = 0\nmax_pixels = 89478485\ncrop_min_scale = 0.08\n"
    "\n[model]\nname = resnet20\nwidth = 1\npath =\nno_gate =\ngate_stem = false\nclassifier_bn = false\n"
    "\n[pretrain]\nepochs = 1.5\nlr = 0.1\nmomentum = 0.9\nnesterov = false\nweight_decay = 0.0001\n"
    "schedule = cosine\nmilestones =\ngamma = 0.1\nwarmup_epochs = 0\ncosine_before = 0\n"
    "cosine_after = 0\nmomentum_reset = never\n"
    "\n[search]\nmode = staged\nepochs = 0.5\nbeta0 = 1\nbeta_final = 10000\nbeta_update = step\n"
    "beta_hold = 0.1\nlambda = 0.012\nregularizer = flops\nflops_target = 0\nlatency_table =\n"
    "latency_target = 0\nlatency_of = train\narch_lr = 0.01\n"
    "arch_momentum = 0.9\ntrain_classifier = true\nclassifier_lr = 0.01\nweight_decay = -1\n"
    "momentum_reset = never\nflops_count = exact\n"
    "\n[prune]\nthreshold = 0.9\nchannel_multiple = 1\n"
    "\n[finetune]\nepochs = 1\nlr = 0.05\nmomentum = 0.9\nnesterov = false\nweight_decay = 0.0001\n"
    "schedule = cosine\nmilestones =\ngamma = 0.1\nwarmup_epochs = 0\ncosine_before = 0\n"
    "cosine_after = 0\nmomentum_reset = never\n"
    "\n[log]\npath = run.h5\nevery = 20\ngate_every = 20\n"
    "\n[checkpoint]\ndir = checkpoints\nevery = 0\nkeep = 2\n"
    "\n[run]\nseed = 1\nthreads = 0\ndtype = f32\nstages = pretrain,search,prune,finetune\ninit =\n"
    "\n[dist]\nallreduce = bucketed\nbucket_kb = 512\ncheck_sync = false\n";

static const char full_file[] =
    "; a run with every section\n"
    "# hash comments too\n"
    "[data]\n"
    "dataset = cifar10\n"
    "path = /data/cifar-10-batches-bin\n"
    "batch = 256\n"
    "image_size = 32\n"
    "augment = off\n"
    "workers = 4\n"
    "train_limit = 1000\n"
    "eval_limit = 500\n"
    "\n"
    "[model]\n"
    "name = resnet56\n"
    "width = 0.5   ; an inline comment\n"
    "\n"
    "[pretrain]\n"
    "epochs = 200\n"
    "lr = 0.2\n"
    "momentum = 0.95\n"
    "nesterov = YES\n"
    "weight_decay = 5e-4\n"
    "schedule = step\n"
    "milestones = 100, 150\n"
    "gamma = 0.2\n"
    "warmup_epochs = 5\n"
    "\n"
    "[search]\n"
    "mode = joint\n"
    "epochs = 20\n"
    "beta0 = 2\n"
    "beta_final = 1e5\n"
    "beta_update = epoch\n"
    "beta_hold = 0.25\n"
    "lambda = 3e-3\n"
    "regularizer = flops\n"
    "flops_target = 0.5\n"
    "arch_lr = 0.05\n"
    "arch_momentum = 0.8\n"
    "train_classifier = false\n"
    "\n"
    "[prune]\n"
    "threshold = 0.5\n"
    "channel_multiple = 8\n"
    "\n"
    "[finetune]\n"
    "epochs = 40\n"
    "lr = 0.02\n"
    "momentum = 0\n"
    "nesterov = on\n"
    "weight_decay = 0\n"
    "schedule = constant\n"
    "milestones = 10,20,30\n"
    "gamma = 0.5\n"
    "warmup_epochs = 1\n"
    "\n"
    "[log]\n"
    "path = logs/c10.h5\n"
    "every = 50\n"
    "gate_every = 100\n"
    "\n"
    "[checkpoint]\n"
    "dir = ckpt\n"
    "every = 500\n"
    "keep = 3\n"
    "\n"
    "[run]\n"
    "seed = 18446744073709551615\n"
    "threads = 8\n"
    "dtype = F32\n"
    "stages = search, prune\n";

static void test_defaults(void)
{
    dnal_config c;
    dnal_config_defaults(&c);
    tap_ok(!strcmp(c.data.dataset, "fashion-mnist") && !strcmp(c.data.path, "") &&
               c.data.batch == 128 && c.data.image_size == 0 && c.data.augment == 1 &&
               c.data.workers == 2 && c.data.train_limit == 0 && c.data.eval_limit == 0,
           "defaults: [data]");
    tap_ok(!strcmp(c.model.name, "resnet20") && c.model.width == 1.0, "defaults: [model]");
    tap_ok(c.pretrain.epochs == 1.5 && c.pretrain.lr == 0.1 && c.pretrain.momentum == 0.9 &&
               c.pretrain.nesterov == 0 && c.pretrain.weight_decay == 1e-4 &&
               !strcmp(c.pretrain.schedule, "cosine") && c.pretrain.n_milestones == 0 &&
               c.pretrain.gamma == 0.1 && c.pretrain.warmup_epochs == 0,
           "defaults: [pretrain]");
    tap_ok(!strcmp(c.search.mode, "staged") && c.search.epochs == 0.5 && c.search.beta0 == 1 &&
               c.search.beta_final == 1e4 && !strcmp(c.search.beta_update, "step") &&
               c.search.beta_hold == 0.1 && c.search.lambda == 0.012 &&
               !strcmp(c.search.regularizer, "flops") && c.search.flops_target == 0 &&
               c.search.arch_lr == 0.01 && c.search.arch_momentum == 0.9 &&
               c.search.train_classifier == 1,
           "defaults: [search]");
    tap_ok(c.prune.threshold == 0.9 && c.prune.channel_multiple == 1, "defaults: [prune]");
    tap_ok(c.finetune.epochs == 1 && c.finetune.lr == 0.05 && c.finetune.momentum == 0.9 &&
               c.finetune.nesterov == 0 && c.finetune.weight_decay == 1e-4 &&
               !strcmp(c.finetune.schedule, "cosine") && c.finetune.n_milestones == 0 &&
               c.finetune.gamma == 0.1 && c.finetune.warmup_epochs == 0,
           "defaults: [finetune]");
    tap_ok(!strcmp(c.log.path, "run.h5") && c.log.every == 20 && c.log.gate_every == 20,
           "defaults: [log]");
    tap_ok(!strcmp(c.checkpoint.dir, "checkpoints") && c.checkpoint.every == 0 &&
               c.checkpoint.keep == 2,
           "defaults: [checkpoint]");
    tap_ok(c.run.seed == 1 && c.run.threads == 0 && !strcmp(c.run.dtype, "f32") &&
               !strcmp(c.run.stages, "pretrain,search,prune,finetune"),
           "defaults: [run]");
    tap_ok(dnal_config_validate(&c) == 0, "defaults validate");
    char *text = dnal_config_text(&c);
    int ok = text && !strcmp(text, default_text);
    tap_ok(ok, "defaults print as the expected INI (every key, in order, shortest floats)");
    if (!ok)
        tap_diag("got:\n%s", text ? text : "(null)");
    free(text);
}

static void test_full_file(dnal_config *c)
{
    dnal_config_defaults(c);
    const char *path = write_file("run.ini", full_file);
    tap_ok(dnal_config_load(c, path) == 0, "a file with every section loads");
    tap_ok(!strcmp(c->data.dataset, "cifar10") && !strcmp(c->data.path, "/data/cifar-10-batches-bin") &&
               c->data.batch == 256 && c->data.image_size == 32 && c->data.augment == 0 &&
               c->data.workers == 4 && c->data.train_limit == 1000 && c->data.eval_limit == 500,
           "file: [data]");
    tap_ok(!strcmp(c->model.name, "resnet56") && c->model.width == 0.5,
           "file: [model] (inline ';' comment stripped)");
    tap_ok(c->pretrain.epochs == 200 && c->pretrain.lr == 0.2 && c->pretrain.momentum == 0.95 &&
               c->pretrain.nesterov == 1 && c->pretrain.weight_decay == 5e-4 &&
               !strcmp(c->pretrain.schedule, "step") && c->pretrain.n_milestones == 2 &&
               c->pretrain.milestones[0] == 100 && c->pretrain.milestones[1] == 150 &&
               c->pretrain.gamma == 0.2 && c->pretrain.warmup_epochs == 5,
           "file: [pretrain] (milestones with spaces, bool YES)");
    tap_ok(!strcmp(c->search.mode, "joint") && c->search.epochs == 20 && c->search.beta0 == 2 &&
               c->search.beta_final == 1e5 && !strcmp(c->search.beta_update, "epoch") &&
               c->search.beta_hold == 0.25 && c->search.lambda == 3e-3 &&
               !strcmp(c->search.regularizer, "flops") && c->search.flops_target == 0.5 &&
               c->search.arch_lr == 0.05 && c->search.arch_momentum == 0.8 &&
               c->search.train_classifier == 0,
           "file: [search]");
    tap_ok(c->prune.threshold == 0.5 && c->prune.channel_multiple == 8, "file: [prune]");
    tap_ok(c->finetune.epochs == 40 && c->finetune.lr == 0.02 && c->finetune.momentum == 0 &&
               c->finetune.nesterov == 1 && c->finetune.weight_decay == 0 &&
               !strcmp(c->finetune.schedule, "constant") && c->finetune.n_milestones == 3 &&
               c->finetune.milestones[2] == 30 && c->finetune.gamma == 0.5 &&
               c->finetune.warmup_epochs == 1,
           "file: [finetune]");
    tap_ok(!strcmp(c->log.path, "logs/c10.h5") && c->log.every == 50 && c->log.gate_every == 100,
           "file: [log]");
    tap_ok(!strcmp(c->checkpoint.dir, "ckpt") && c->checkpoint.every == 500 &&
               c->checkpoint.keep == 3,
           "file: [checkpoint]");
    tap_ok(c->run.seed == UINT64_MAX && c->run.threads == 8 && !strcmp(c->run.dtype, "f32") &&
               !strcmp(c->run.stages, "search,prune"),
           "file: [run] (seed up to 2^64-1, stages normalised)");
    tap_ok(dnal_config_validate(c) == 0, "the loaded file validates");
}

static void test_set(dnal_config *c)
{
    int rc = set_quiet(c, "data.batch=64") | set_quiet(c, "log.path=a=b.h5") |
             set_quiet(c, "data.path=") | set_quiet(c, "pretrain.milestones=") |
             set_quiet(c, " search.lambda = 0.5 ") | set_quiet(c, "run.stages=finetune") |
             set_quiet(c, "data.dataset=SYNTHETIC") | set_quiet(c, "run.seed=42");
    tap_ok(rc == 0, "--set overrides after the file succeed");
    tap_ok(c->data.batch == 64, "--set data.batch=64");
    tap_ok(!strcmp(c->log.path, "a=b.h5"), "--set value may contain '='");
    tap_ok(!strcmp(c->data.path, ""), "--set value may be empty (string)");
    tap_ok(c->pretrain.n_milestones == 0 && c->pretrain.milestones[0] == 0,
           "--set empty list clears the milestones");
    tap_ok(c->search.lambda == 0.5, "--set trims spaces around key and value");
    tap_ok(!strcmp(c->run.stages, "finetune"), "--set run.stages=finetune");
    tap_ok(!strcmp(c->data.dataset, "synthetic"), "enum values match case-insensitively, stored canonical");
    tap_ok(c->run.seed == 42 && c->data.workers == 4, "--set leaves other keys from the file alone");

    static const struct { const char *v; int want; } bools[] = {
        {"0", 0}, {"1", 1}, {"true", 1}, {"false", 0}, {"yes", 1}, {"no", 0},
        {"on", 1}, {"off", 0}, {"TRUE", 1}, {"Off", 0}, {"No", 0}, {"yEs", 1},
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
        char a[64];
        snprintf(a, sizeof a, "data.augment=%s", bools[i].v);
        c->data.augment = -1;
        ok &= set_quiet(c, a) == 0 && c->data.augment == bools[i].want;
    }
    tap_ok(ok, "bools: 0/1/true/false/yes/no/on/off, any case");

    dnal_config d;
    dnal_config_defaults(&d);
    tap_ok(set_quiet(&d, "search.lambda=0.30000000000000004") == 0 &&
               set_quiet(&d, "pretrain.milestones=1e-10, 0.1,0.30000000000000004") == 0,
           "--set floats that need 17 digits");
    char *text = dnal_config_text(&d);
    tap_ok(text && strstr(text, "\nlambda = 0.30000000000000004\n") &&
               strstr(text, "\nmilestones = 1e-10,0.1,0.30000000000000004\n"),
           "floats print with as many digits as they need, lists comma-separated");
    free(text);
}

static void test_round_trip(const dnal_config *c, const char *what)
{
    char *text = dnal_config_text(c);
    char path[512];
    snprintf(path, sizeof path, "%s", write_file("rt.ini", text ? text : ""));
    dnal_config back;
    dnal_config_defaults(&back);
    /* start from values unlike c's, so that every key must come from the text */
    set_quiet(&back, "pretrain.milestones=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16");
    set_quiet(&back, "model.name=zzz");
    int rc = dnal_config_load(&back, path);
    tap_ok(rc == 0 && !memcmp(&back, c, sizeof back), "%s: write then load gives an identical config",
           what);
    char *again = dnal_config_text(&back);
    tap_ok(text && again && !strcmp(text, again), "%s: and the same text", what);

    /* dnal_config_write prints what dnal_config_text returns */
    FILE *f = fopen(tmp_path("out.ini"), "w");
    dnal_config_write(c, f);
    fclose(f);
    static char written[16384];
    read_file(tmp_path("out.ini"), written, sizeof written);
    tap_ok(text && !strcmp(written, text), "%s: dnal_config_write prints the same text", what);
    free(text);
    free(again);
}

/* Random string values (every byte but NUL, lengths up to the field's,
 * '=', ';', '#', quotes, brackets, spaces and non-ASCII favoured): every one
 * --set accepts must come back unchanged through the stored text, as a
 * checkpoint's configuration is read back on --resume. */
static void test_random_values(void)
{
    static const char odd[] = " =;#:[]\"'\\,.\t";
    uint64_t state = 0x9e3779b97f4a7c15ull;
    int tried = 0, accepted = 0, back_ok = 0, longest = 0;
    static char value[DNAL_PATH_MAX + 16], assignment[DNAL_PATH_MAX + 64];
    for (int t = 0; t < 400; t++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        int len = t < 8 ? 190 + 30 * t : (int)((state >> 33) % (DNAL_PATH_MAX + 8));
        for (int i = 0; i < len; i++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            unsigned r = (unsigned)(state >> 40);
            value[i] = r % 4 == 0 ? odd[r / 4 % (sizeof odd - 1)]
                       : r % 4 == 1 ? (char)(0x80 + r / 4 % 0x80)  /* non-ASCII bytes */
                       : r % 4 == 2 ? (char)('a' + r / 4 % 26)
                                    : (char)(1 + r / 4 % 255);     /* any byte but NUL */
        }
        value[len] = '\0';
        if (t % 3 == 0) /* many also without control characters, so that --set takes them */
            for (int i = 0; i < len; i++)
                if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
                    value[i] = 'x';
        snprintf(assignment, sizeof assignment, "data.path=%s", value);
        dnal_config c;
        dnal_config_defaults(&c);
        tried++;
        capture_begin();
        int rc = dnal_config_set(&c, assignment);
        capture_end();
        if (rc)
            continue;
        accepted++;
        char *text = dnal_config_text(&c);
        dnal_config back;
        dnal_config_defaults(&back);
        capture_begin();
        int bad = dnal_config_load_text(&back, text, "random");
        capture_end();
        if (!bad && !strcmp(back.data.path, c.data.path)) {
            back_ok++;
            longest = (int)strlen(c.data.path) > longest ? (int)strlen(c.data.path) : longest;
        } else {
            tap_diag("lost: '%s' (%s)", c.data.path, bad ? errtext : "changed");
        }
        free(text);
    }
    tap_ok(accepted > 100 && back_ok == accepted && longest > 900,
           "random values: all %d of %d that --set accepts round-trip through the stored text "
           "(longest %d characters)", accepted, tried, longest);
    dnal_config c;
    dnal_config_defaults(&c);
    char path230[240];
    memset(path230, 'p', 230);
    path230[230] = '\0';
    path230[0] = '/';
    char set230[300];
    snprintf(set230, sizeof set230, "data.path=%s", path230);
    set_quiet(&c, set230);
    char *text = dnal_config_text(&c);
    dnal_config back;
    dnal_config_defaults(&back);
    tap_ok(dnal_config_load_text(&back, text, "stored") == 0 && !strcmp(back.data.path, path230),
           "a data path of 230 characters reads back (inih's lines hold 200)");
    free(text);
}

static void test_file_errors(void)
{
    load_error("; a typo in a section name\n\n[serch]\nlambda = 1\n", "3: unknown section [serch]");
    load_error("[data]\nbatch = 2\n\n[foo]\n", "4: unknown section [foo]");
    load_error("[search]\n; comment\n\nmode = staged\nepochs = 1\n# comment\nlamda = 0.1\n",
               "7: unknown key 'lamda' in section [search]");
    load_error("batch = 3\n[data]\n", "1: key 'batch' is outside any section");
    load_error("[search]\n\n\n\n\n\n\n\n\n\n\nlambda = abc\n", "12: search.lambda: 'abc' is not a number");
    load_error("[data]\nbatch = 12abc\n", "2: data.batch: '12abc' is not an integer");
    load_error("[search]\nlambda = 0.5x\n", "2: search.lambda: '0.5x' is not a number");
    load_error("[data]\nbatch = 1.5\n", "2: data.batch: '1.5' is not an integer");
    load_error("[data]\nbatch =\n", "2: data.batch: '' is not an integer");
    load_error("[search]\nlambda =\n", "2: search.lambda: '' is not a number");
    load_error("[search]\nlambda = nan\n", "2: search.lambda: 'nan' is not a finite number");
    load_error("[search]\nlambda = inf\n", "2: search.lambda: 'inf' is not a finite number");
    load_error("[search]\nlambda = 1e999\n", "2: search.lambda: '1e999' is not a finite number");
    load_error("[run]\n\n\n\n[data]\ndataset = mnist\n",
               "6: data.dataset: 'mnist' is not one of fashion-mnist, cifar10, imagenet, "
               "imagenet-shards, synthetic");
    load_error("[data]\ndataset = fashion-mnist\n\n\ndataset = mnist\n",
               "5: data.dataset: 'mnist' is not one of fashion-mnist, cifar10, imagenet, "
               "imagenet-shards, synthetic");
    load_error("[run]\ndtype = FP16\n", "2: run.dtype: 'FP16' is not one of f32, bf16");
    load_error("[data]\naugment = maybe\n",
               "2: data.augment: 'maybe' is not a boolean (true/false, yes/no, on/off, 1/0)");
    load_error("[prune]\nthreshold = 1\n", "2: prune.threshold must be in (0, 1)");
    load_error("[prune]\nchannel_multiple = 0\n", "2: prune.channel_multiple must be auto or >= 1");
    load_error("[prune]\nchannel_multiple = autom\n",
               "2: prune.channel_multiple: 'autom' is not an integer");
    load_error("[search]\nbeta_hold = -0.5\n", "2: search.beta_hold must be in [0, 1)");
    load_error("[checkpoint]\nkeep = 0\n", "2: checkpoint.keep must be >= 1");
    load_error("[run]\nstages = pretrain,train\n",
               "2: run.stages: 'train' is not one of pretrain, search, prune, finetune");
    load_error("[run]\nstages = search,prune,search\n", "2: run.stages: 'search' is listed twice");
    load_error("[run]\nstages =\n",
               "2: run.stages: must list at least one of pretrain, search, prune, finetune");
    load_error("[run]\nstages = search,,prune\n", "2: run.stages: empty entry in 'search,,prune'");
    load_error("[pretrain]\nmilestones = 30,10\n", "2: pretrain.milestones must be non-decreasing");
    load_error("[pretrain]\nmilestones = 1,,2\n", "2: pretrain.milestones: empty entry in '1,,2'");
    load_error("[finetune]\nmilestones = 1, x\n", "2: finetune.milestones: 'x' is not a number");
    load_error("[finetune]\nmilestones = -1\n", "2: finetune.milestones must be >= 0");
    load_error("[pretrain]\nmilestones = 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17\n",
               "2: pretrain.milestones: more than 16 entries");
    load_error("[model]\nname = a-model-name-of-thirty-two-chars\n",
               "2: model.name: value is longer than 31 characters");
    load_error("[model]\nname =\n", "2: model.name must not be empty");
    load_error("[data]\nbatch\n",
               "2: cannot parse the line (expected [section], key = value or a comment)");
    load_error("[data\nbatch = 3\n",
               "1: cannot parse the line (expected [section], key = value or a comment)");
    load_error("[data]\nnoeq\nbatch = x\n",
               "2: cannot parse the line (expected [section], key = value or a comment)");
    load_error("[data]\nbatch = x\nnoeq\n", "2: data.batch: 'x' is not an integer");
    load_error("[data]\nbatch = 2\nworkers = -1\n[serch]\n", "3: data.workers must be >= 0");
    load_error("[data]\nbatch = 2\n  workers = 3\n",
               "3: indented line continues data.batch (multi-line values are not supported)");
    load_error("[data]\nbatch = 2\n  [model]\n",
               "3: indented line continues data.batch (multi-line values are not supported)");
    load_error("[ model ]\nname = x\n\t y\n",
               "3: indented line continues model.name (multi-line values are not supported)");
    /* a long key line is read whole (inih's lines hold 200); a value
     * longer than its field, or a long line that is no key, is still an error */
    char long_line[1200];
    snprintf(long_line, sizeof long_line, "[data]\npath = /%01100d\n", 0);
    load_error(long_line, "2: data.path: value is longer than 1023 characters");
    snprintf(long_line, sizeof long_line, "[data]\nx%0250d\n", 0);
    load_error(long_line, "2: line is longer than 197 characters");

    /* exactly one line, even with several errors */
    load_error("[data]\nbatch = 0\nworkers = x\n[nope]\n", "2: data.batch must be >= 1");

    dnal_config c, d;
    dnal_config_defaults(&c);
    dnal_config_defaults(&d);
    const char *path = write_file("bad.ini", "[data]\nbatch = 7\nworkers = x\n");
    capture_begin();
    int rc = dnal_config_load(&c, path);
    capture_end();
    tap_ok(rc == 1 && !memcmp(&c, &d, sizeof c), "a file that fails changes nothing");

    path = write_file("ok.ini", "\xEF\xBB\xBF[data]\r\n  batch = 3\r\n[ model ]\r\nname=x ; c\r\n");
    tap_ok(dnal_config_load(&c, path) == 0 && c.data.batch == 3 && !strcmp(c.model.name, "x"),
           "BOM, CRLF, an indented key after a header, spaces inside [ ]");

    path = write_file("ok.ini", "[data]\nbatch: 5\n  ; an indented comment\n# another\n"
                                "workers = 1\n[model]\n  name = y\n");
    tap_ok(dnal_config_load(&c, path) == 0 && c.data.batch == 5 && c.data.workers == 1 &&
               !strcmp(c.model.name, "y"),
           "key: value, indented comments after a key, an indented key after the next header");

    /* the longest line there is room for, ended by "\r\r\n" */
    char longest[300];
    snprintf(longest, sizeof longest, "[data]\npath = /%0189d\r\r\n", 0);
    path = write_file("ok.ini", longest);
    tap_ok(dnal_config_load(&c, path) == 0 && strlen(c.data.path) == 190,
           "a line of 197 characters with extra carriage returns loads");

    char want[1024];
    path = tmp_path("nope.ini");
    capture_begin();
    rc = dnal_config_load(&c, path);
    capture_end();
    snprintf(want, sizeof want, "dnal: error: cannot read config file '%s': No such file or directory\n",
             path);
    tap_ok(rc == 1 && !strcmp(errtext, want), "missing file: %s", want);
    show_mismatch(rc == 1 && !strcmp(errtext, want), rc, want);
    capture_begin();
    rc = dnal_config_load(&c, dir);
    capture_end();
    snprintf(want, sizeof want, "dnal: error: cannot read config file '%s': Is a directory\n", dir);
    tap_ok(rc == 1 && !strcmp(errtext, want), "a folder: cannot read config file ...: Is a directory");
    show_mismatch(rc == 1 && !strcmp(errtext, want), rc, want);
}

static void test_set_errors(void)
{
    set_error("data.batch=0", NULL, "data.batch must be >= 1");
    set_error("data.workers=-1", NULL, "data.workers must be >= 0");
    set_error("log.every=0", NULL, "log.every must be >= 1");
    set_error("pretrain.momentum=1", NULL, "pretrain.momentum must be in [0, 1)");
    set_error("model.width=0", NULL, "model.width must be > 0");
    set_error("search.beta0=0", NULL, "search.beta0 must be > 0");
    set_error("search.flops_target=1.5", NULL, "search.flops_target must be in [0, 1]");
    set_error("prune.threshold=0", NULL, "prune.threshold must be in (0, 1)");
    set_error("finetune.gamma=-1", NULL, "finetune.gamma must be > 0");
    set_error("run.seed=-1", NULL, "run.seed must be >= 0");
    set_error("run.seed=1x", NULL, "run.seed: '1x' is not an integer");
    set_error("run.seed=18446744073709551616", NULL,
              "run.seed: '18446744073709551616' is out of range");
    set_error("data.batch=99999999999999999999", NULL,
              "data.batch: '99999999999999999999' is out of range");
    set_error("search.lambda=abc", NULL, "search.lambda: 'abc' is not a number");
    set_error("search.lamda=1", NULL, "unknown key 'lamda' in section [search]");
    set_error("serch.lambda=1", NULL, "unknown section [serch]");
    set_error("batch=3", NULL, "expected section.key=value");
    set_error("data.batch", NULL, "expected section.key=value");
    set_error("=3", NULL, "expected section.key=value");
    set_error("data.=3", NULL, "expected section.key=value");
    set_error(".batch=3", NULL, "expected section.key=value");
    set_error("data.augment=maybe", NULL,
              "data.augment: 'maybe' is not a boolean (true/false, yes/no, on/off, 1/0)");
    set_error("run.dtype=f16", NULL, "run.dtype: 'f16' is not one of f32, bf16");
    set_error("run.stages=pretrain,pretrain", NULL, "run.stages: 'pretrain' is listed twice");
    set_error("model.name=a-model-name-of-thirty-two-chars", NULL,
              "model.name: value is longer than 31 characters");
    set_error("model.name=a\nb", "model.name=a?b",
              "model.name: value cannot be written back as INI (control character, space at an "
              "end, or ' ;')");
    set_error("data.path=a ;b", NULL,
              "data.path: value cannot be written back as INI (control character, space at an "
              "end, or ' ;')");

    dnal_config c;
    dnal_config_defaults(&c);
    capture_begin();
    int rc = dnal_config_set(&c, "data.batch=0") + dnal_config_set(&c, "pretrain.milestones=3,2");
    capture_end();
    tap_ok(rc == 2 && c.data.batch == 128 && c.pretrain.n_milestones == 0,
           "a --set that fails changes nothing");
}

static void test_validate(void)
{
    dnal_config c;
    dnal_config_defaults(&c);
    set_quiet(&c, "search.beta0=100");
    set_quiet(&c, "search.beta_final=10");
    validate_error(&c, "search.beta_final (10) must be >= search.beta0 (100)");
    set_quiet(&c, "search.beta_final=100");
    tap_ok(dnal_config_validate(&c) == 0, "beta_final == beta0 validates");

    /* the faithful-mode keys that depend on others */
    dnal_config_defaults(&c);
    set_quiet(&c, "search.weight_decay=-0.5");
    validate_error(&c, "search.weight_decay must be >= 0, or -1 for pretrain.weight_decay");
    set_quiet(&c, "search.weight_decay=0");
    set_quiet(&c, "model.gate_stem=true");
    tap_ok(dnal_config_validate(&c) == 0, "model.gate_stem=true validates for resnet20");
    set_quiet(&c, "model.name=vgg16");
    validate_error(&c, "model.gate_stem: only the ResNets have an ungated stem");
    dnal_config_defaults(&c);
    set_quiet(&c, "model.classifier_bn=true");
    validate_error(&c, "model.classifier_bn: only vgg16-imagenet has hidden linear layers without BN");
    set_quiet(&c, "model.name=vgg16-imagenet");
    tap_ok(dnal_config_validate(&c) == 0, "model.classifier_bn=true validates for vgg16-imagenet");

    dnal_config_defaults(&c);
    strcpy(c.run.stages, "pretrain,pretrain");
    validate_error(&c, "run.stages: 'pretrain' is listed twice");
    strcpy(c.run.stages, "pretrain,eval");
    validate_error(&c, "run.stages: 'eval' is not one of pretrain, search, prune, finetune");
    strcpy(c.run.stages, "");
    validate_error(&c, "run.stages: must list at least one of pretrain, search, prune, finetune");

    dnal_config_defaults(&c);
    c.data.batch = 0;
    validate_error(&c, "data.batch must be >= 1");
    dnal_config_defaults(&c);
    strcpy(c.search.mode, "both");
    validate_error(&c, "search.mode: 'both' is not one of staged, joint");
    dnal_config_defaults(&c);
    c.pretrain.n_milestones = 2;
    c.pretrain.milestones[0] = 5;
    c.pretrain.milestones[1] = 4;
    validate_error(&c, "pretrain.milestones must be non-decreasing");
}

/* The keys of the written INI, as "section.key" in order, one a line. */
static void written_keys(const dnal_config *c, char *out, size_t n)
{
    char *text = dnal_config_text(c), section[64] = "", name[64];
    size_t used = 0;
    out[0] = '\0';
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        if (sscanf(line, "[%63[^]]]", section) == 1)
            continue;
        if (sscanf(line, "%63s =", name) == 1 && used < n)
            used += (size_t)snprintf(out + used, n - used, "%s.%s\n", section, name);
    }
    free(text);
}

/* dnal config --list: one line per key of the table, in the written INI's
 * order, each with a type, a default that parses back, accepted values and
 * a description. */
static void test_list(const dnal_config *other)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        printf("Bail out! open_memstream failed\n");
        exit(1);
    }
    dnal_config_list(f);
    fclose(f);

    dnal_config defaults, back;
    dnal_config_defaults(&defaults);
    memcpy(&back, other, sizeof back);
    static char listed[8192], written[8192];
    size_t used = 0;
    int lines = 0, fields_ok = 1, parse_ok = 1, trailing = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char key[128], type[32], def[256], accepted[256], assignment[512];
        int doc = 0;
        lines++;
        trailing += line[strlen(line) - 1] == ' ';
        if (sscanf(line, "%127s %31s %255s %255s %n", key, type, def, accepted, &doc) != 4 ||
            !line[doc]) {
            fields_ok = 0;
            tap_diag("line %d has no five columns: %s", lines, line);
            continue;
        }
        used += (size_t)snprintf(listed + used, sizeof listed - used, "%s\n", key);
        snprintf(assignment, sizeof assignment, "%s=%s", key, strcmp(def, "\"\"") ? def : "");
        if (set_quiet(&back, assignment)) {
            parse_ok = 0;
            tap_diag("the default does not parse: %s", assignment);
        }
    }
    free(text);
    written_keys(&defaults, written, sizeof written);
    tap_ok(lines == dnal_config_key_count() && lines > 50, "--list: %d lines, one per key (%d)",
           lines, dnal_config_key_count());
    tap_ok(fields_ok && !trailing, "--list: key, type, default, accepted values, description; "
                                   "no trailing spaces");
    tap_ok(!strcmp(listed, written), "--list: the written INI's keys, in its order");
    if (strcmp(listed, written))
        tap_diag("listed:\n%swritten:\n%s", listed, written);
    tap_ok(parse_ok && !memcmp(&back, &defaults, sizeof back),
           "--list: every default parses back, and together they are the defaults");
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/dnal-config-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        printf("Bail out! mkdtemp failed\n");
        return 1;
    }
    snprintf(errpath, sizeof errpath, "%s/stderr.txt", dir);

    test_defaults();
    dnal_config c;
    test_full_file(&c);
    test_set(&c);

    dnal_config d;
    dnal_config_defaults(&d);
    test_round_trip(&d, "defaults");
    test_round_trip(&c, "file + --set");
    set_quiet(&c, "search.lambda=0.30000000000000004");
    set_quiet(&c, "pretrain.lr=0.33333333333333331");
    set_quiet(&c, "search.arch_lr=1e-300");
    set_quiet(&c, "search.beta_final=1.7976931348623157e308");
    set_quiet(&c, "finetune.milestones=1e-10,0.1,0.30000000000000004,1e20");
    set_quiet(&c, "data.path=/a path/with spaces;and=signs");
    test_round_trip(&c, "awkward floats and strings");
    set_quiet(&c, "prune.channel_multiple=AUTO");
    tap_ok(c.prune.channel_multiple == 0, "prune.channel_multiple=auto is stored as 0");
    test_round_trip(&c, "channel_multiple auto");
    test_random_values();

    test_file_errors();
    test_set_errors();
    test_validate();
    test_list(&c);

    static const char *const names[] = {"run.ini", "bad.ini", "ok.ini", "rt.ini", "out.ini",
                                        "stderr.txt"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unlink(tmp_path(names[i]));
    tap_ok(rmdir(dir) == 0, "temporary folder removed");
    return tap_done();
}
