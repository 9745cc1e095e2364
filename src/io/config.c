/* The run configuration (DESIGN.md section 5).
 *
 * One table, keys[] below, lists every key: section, name, type, the field
 * of dnal_config it fills, its default as INI text and the values it accepts.
 * The defaults, the file and --set parsers, validation and printing all walk
 * that table; set_value() is the one place that turns text into a field and
 * format_value() the one place that turns a field back into text.
 *
 * Files are read with libinih through our own line reader. Debian's inih
 * passes no line number to the handler, so the reader counts lines (the
 * handler runs while the count is at the key's line). inih reports sections
 * only through the keys in them, so the reader also recognises [section]
 * headers the way inih does and checks them on the spot: an unknown section
 * is an error even when it is empty. */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "dnal/config.h"

enum key_type { T_INT, T_U64, T_FLOAT, T_BOOL, T_STRING, T_ENUM, T_LIST, T_STAGES };
enum { LO_OPEN = 1, HI_OPEN = 2, NONEMPTY = 4 };

typedef struct key_def {
    const char *section, *name;
    enum key_type type;
    size_t off, size;       /* the field in dnal_config */
    const char *def;        /* the default, as INI text */
    const char *values;     /* T_ENUM: the allowed values, '|'-separated */
    double lo, hi;          /* numbers and list entries: the allowed range */
    unsigned flags;         /* LO_OPEN, HI_OPEN: bound excluded; NONEMPTY: strings */
    size_t count_off;       /* T_LIST: the int that counts the entries */
} key_def;

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

static const key_def keys[] = {
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
    {K("run", "dtype", T_ENUM, run.dtype, "f32"), ONE_OF("f32|bf16")},
    {K("run", "stages", T_STAGES, run.stages, "pretrain,search,prune,finetune")},
    {K("run", "init", T_STRING, run.init, "")},

    {K("dist", "allreduce", T_ENUM, dist.allreduce, "bucketed"), ONE_OF("bucketed|blocking")},
    {K("dist", "bucket_kb", T_INT, dist.bucket_kb, "512"), GE(1)},
    {K("dist", "check_sync", T_BOOL, dist.check_sync, "false")},
};
enum { N_KEYS = sizeof keys / sizeof keys[0] };

static const char *const stage_names[] = {"pretrain", "search", "prune", "finetune"};
enum { N_STAGES = sizeof stage_names / sizeof stage_names[0] };

/* Room for an error message and for any value as text (a path, a list). */
enum { MSG_MAX = 2 * DNAL_PATH_MAX + 256, TEXT_MAX = 2 * DNAL_PATH_MAX };

/* ---- small helpers */

static int fail(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return 1;
}

/* Prints "dnal: error: ..." as exactly one line (control characters of
 * echoed values become '?'). Returns 1. */
static int report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int report(const char *fmt, ...)
{
    char msg[MSG_MAX + DNAL_PATH_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    fflush(stdout);
    fprintf(stderr, "dnal: error: %s\n", msg);
    fflush(stderr);
    return 1;
}

static void trim(const char **s, size_t *len)
{
    while (*len && isspace((unsigned char)**s))
        (*s)++, (*len)--;
    while (*len && isspace((unsigned char)(*s)[*len - 1]))
        (*len)--;
}

static int section_known(const char *s, size_t len)
{
    trim(&s, &len);
    for (int i = 0; i < N_KEYS; i++)
        if (strlen(keys[i].section) == len && !memcmp(keys[i].section, s, len))
            return 1;
    return 0;
}

static const key_def *find_key(const char *sec, size_t seclen, const char *name, size_t namelen)
{
    trim(&sec, &seclen);
    trim(&name, &namelen);
    for (int i = 0; i < N_KEYS; i++)
        if (strlen(keys[i].section) == seclen && !memcmp(keys[i].section, sec, seclen) &&
            strlen(keys[i].name) == namelen && !memcmp(keys[i].name, name, namelen))
            return &keys[i];
    return NULL;
}

/* Shortest %.Ng (N = 1..17) that reads back as the same double; integral
 * values print without an exponent (10000, not 1e+04). */
static void format_double(double v, char *buf, size_t n)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    if (strchr(buf, 'e') && v == floor(v) && fabs(v) < 1e15)
        snprintf(buf, n, "%.0f", v);
}

/* Whether a string survives "key = value" and inih's reading unchanged:
 * no control characters but tab, no whitespace at either end, and no
 * whitespace followed by ';' (inih's inline comment). */
static int ini_safe(const char *s)
{
    size_t len = strlen(s);
    if (len && (isspace((unsigned char)s[0]) || isspace((unsigned char)s[len - 1])))
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
        if (c == ';' && i && isspace((unsigned char)s[i - 1]))
            return 0;
    }
    return 1;
}

/* ---- text to field: every parsed value goes through set_value() */

static int check_range(const key_def *k, double x, char *err, size_t n)
{
    int lo_ok = (k->flags & LO_OPEN) ? x > k->lo : x >= k->lo;
    int hi_ok = isinf(k->hi) || ((k->flags & HI_OPEN) ? x < k->hi : x <= k->hi);
    if (lo_ok && hi_ok)
        return 0;
    char lo[32], hi[32];
    format_double(k->lo, lo, sizeof lo);
    format_double(k->hi, hi, sizeof hi);
    if (isinf(k->hi))
        return fail(err, n, "%s.%s must be %s %s", k->section, k->name,
                    (k->flags & LO_OPEN) ? ">" : ">=", lo);
    return fail(err, n, "%s.%s must be in %c%s, %s%c", k->section, k->name,
                (k->flags & LO_OPEN) ? '(' : '[', lo, hi, (k->flags & HI_OPEN) ? ')' : ']');
}

/* A finite double spanning exactly s[0..len). 0, or 1 with the message. */
static int parse_double(const key_def *k, const char *s, size_t len, double *out, char *err,
                        size_t n)
{
    char *end;
    double x = len ? strtod(s, &end) : 0;
    if (!len || end != s + len || isspace((unsigned char)s[0]))
        return fail(err, n, "%s.%s: '%.*s' is not a number", k->section, k->name, (int)len, s);
    if (!isfinite(x))
        return fail(err, n, "%s.%s: '%.*s' is not a finite number", k->section, k->name,
                    (int)len, s);
    *out = x;
    return check_range(k, x, err, n);
}

static int parse_int(const key_def *k, const char *s, int64_t *out, char *err, size_t n)
{
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (!*s || *end || isspace((unsigned char)s[0]))
        return fail(err, n, "%s.%s: '%s' is not an integer", k->section, k->name, s);
    if (errno == ERANGE)
        return fail(err, n, "%s.%s: '%s' is out of range", k->section, k->name, s);
    *out = x;
    return check_range(k, (double)x, err, n);
}

static int parse_u64(const key_def *k, const char *s, uint64_t *out, char *err, size_t n)
{
    if (s[0] == '-') { /* strtoull would wrap it around */
        int64_t x = 0;
        if (parse_int(k, s, &x, err, n))
            return 1;
        *out = 0; /* "-0" */
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (!*s || *end || isspace((unsigned char)s[0]))
        return fail(err, n, "%s.%s: '%s' is not an integer", k->section, k->name, s);
    if (errno == ERANGE)
        return fail(err, n, "%s.%s: '%s' is out of range", k->section, k->name, s);
    *out = x;
    return 0;
}

static int parse_bool(const key_def *k, const char *s, int *out, char *err, size_t n)
{
    static const char *const yes[] = {"1", "true", "yes", "on"}, *const no[] = {"0", "false", "no", "off"};
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(s, yes[i]))
            return *out = 1, 0;
        if (!strcasecmp(s, no[i]))
            return *out = 0, 0;
    }
    return fail(err, n, "%s.%s: '%s' is not a boolean (true/false, yes/no, on/off, 1/0)",
                k->section, k->name, s);
}

/* Enum values match case-insensitively and are stored as the table spells them. */
static int parse_enum(const key_def *k, const char *s, char *field, char *err, size_t n)
{
    size_t len = strlen(s);
    for (const char *v = k->values; *v;) {
        size_t vlen = strcspn(v, "|");
        if (vlen == len && !strncasecmp(v, s, len)) {
            assert(vlen < k->size);
            memset(field, 0, k->size);
            memcpy(field, v, vlen);
            return 0;
        }
        v += vlen + (v[vlen] == '|');
    }
    char list[256] = "";
    for (const char *v = k->values; *v; v++)
        strncat(list, *v == '|' ? ", " : (char[2]){*v, 0}, sizeof list - strlen(list) - 1);
    return fail(err, n, "%s.%s: '%s' is not one of %s", k->section, k->name, s, list);
}

static int parse_string(const key_def *k, const char *s, char *field, char *err, size_t n)
{
    size_t len = strlen(s);
    if (len >= k->size)
        return fail(err, n, "%s.%s: value is longer than %zu characters", k->section, k->name,
                    k->size - 1);
    if ((k->flags & NONEMPTY) && !len)
        return fail(err, n, "%s.%s must not be empty", k->section, k->name);
    if (!ini_safe(s))
        return fail(err, n,
                    "%s.%s: value cannot be written back as INI (control character, "
                    "space at an end, or ' ;')", k->section, k->name);
    memset(field, 0, k->size);
    memcpy(field, s, len);
    return 0;
}

/* Calls fn on each comma-separated entry of s, trimmed. An empty s has no
 * entries; an empty entry is an error. */
typedef int (*entry_fn)(const key_def *k, const char *e, size_t len, void *acc, char *err,
                        size_t n);
static int for_entries(const key_def *k, const char *s, entry_fn fn, void *acc, char *err,
                       size_t n)
{
    size_t all = strlen(s);
    trim(&s, &all);
    if (!all)
        return 0;
    for (const char *p = s;;) {
        size_t len = strcspn(p, ",");
        const char *next = p + len;
        const char *e = p;
        trim(&e, &len);
        if (!len)
            return fail(err, n, "%s.%s: empty entry in '%s'", k->section, k->name, s);
        if (fn(k, e, len, acc, err, n))
            return 1;
        if (!*next)
            return 0;
        p = next + 1;
    }
}

typedef struct list_acc {
    double v[DNAL_MAX_MILESTONES];
    int count;
} list_acc;

static int list_entry(const key_def *k, const char *e, size_t len, void *acc, char *err, size_t n)
{
    list_acc *l = acc;
    double x;
    if (parse_double(k, e, len, &x, err, n))
        return 1;
    if ((size_t)l->count == k->size / sizeof(double))
        return fail(err, n, "%s.%s: more than %zu entries", k->section, k->name,
                    k->size / sizeof(double));
    if (l->count && x < l->v[l->count - 1])
        return fail(err, n, "%s.%s must be non-decreasing", k->section, k->name);
    l->v[l->count++] = x;
    return 0;
}

typedef struct stages_acc {
    unsigned seen;
    char text[64];
} stages_acc;

static int stage_entry(const key_def *k, const char *e, size_t len, void *acc, char *err,
                       size_t n)
{
    stages_acc *st = acc;
    for (int i = 0; i < N_STAGES; i++) {
        if (strlen(stage_names[i]) != len || strncasecmp(stage_names[i], e, len))
            continue;
        if (st->seen & 1u << i)
            return fail(err, n, "%s.%s: '%s' is listed twice", k->section, k->name,
                        stage_names[i]);
        st->seen |= 1u << i;
        if (*st->text)
            strcat(st->text, ",");
        strcat(st->text, stage_names[i]); /* fits: each name at most once */
        return 0;
    }
    return fail(err, n, "%s.%s: '%.*s' is not one of pretrain, search, prune, finetune",
                k->section, k->name, (int)len, e);
}

/* Parses the text value s into k's field of cfg. The field changes only on
 * success. 0, or 1 with the message (naming the key) in err. */
static int set_value(dnal_config *cfg, const key_def *k, const char *s, char *err, size_t n)
{
    char *field = (char *)cfg + k->off;
    switch (k->type) {
    case T_INT: {
        int64_t x = 0;
        if (parse_int(k, s, &x, err, n))
            return 1;
        memcpy(field, &x, sizeof x);
        return 0;
    }
    case T_U64: {
        uint64_t x = 0;
        if (parse_u64(k, s, &x, err, n))
            return 1;
        memcpy(field, &x, sizeof x);
        return 0;
    }
    case T_FLOAT: {
        double x = 0;
        if (parse_double(k, s, strlen(s), &x, err, n))
            return 1;
        memcpy(field, &x, sizeof x);
        return 0;
    }
    case T_BOOL: {
        int x = 0;
        if (parse_bool(k, s, &x, err, n))
            return 1;
        memcpy(field, &x, sizeof x);
        return 0;
    }
    case T_STRING:
        return parse_string(k, s, field, err, n);
    case T_ENUM:
        return parse_enum(k, s, field, err, n);
    case T_LIST: {
        list_acc l = {.count = 0};
        if (for_entries(k, s, list_entry, &l, err, n))
            return 1;
        memset(field, 0, k->size);
        memcpy(field, l.v, (size_t)l.count * sizeof(double));
        memcpy((char *)cfg + k->count_off, &l.count, sizeof l.count);
        return 0;
    }
    case T_STAGES: {
        stages_acc st = {.seen = 0};
        if (for_entries(k, s, stage_entry, &st, err, n))
            return 1;
        if (!st.seen)
            return fail(err, n, "%s.%s: must list at least one of pretrain, search, prune, finetune",
                        k->section, k->name);
        return parse_string(k, st.text, field, err, n);
    }
    }
    return fail(err, n, "%s.%s: internal error: unknown key type", k->section, k->name);
}

/* ---- field to text */

static void format_value(const dnal_config *cfg, const key_def *k, char *out, size_t n)
{
    const char *field = (const char *)cfg + k->off;
    switch (k->type) {
    case T_INT: {
        int64_t x = 0;
        memcpy(&x, field, sizeof x);
        snprintf(out, n, "%lld", (long long)x);
        return;
    }
    case T_U64: {
        uint64_t x = 0;
        memcpy(&x, field, sizeof x);
        snprintf(out, n, "%llu", (unsigned long long)x);
        return;
    }
    case T_FLOAT: {
        double x = 0;
        memcpy(&x, field, sizeof x);
        format_double(x, out, n);
        return;
    }
    case T_BOOL: {
        int x = 0;
        memcpy(&x, field, sizeof x);
        snprintf(out, n, "%s", x ? "true" : "false");
        return;
    }
    case T_STRING:
    case T_ENUM:
    case T_STAGES:
        snprintf(out, n, "%.*s", (int)strnlen(field, k->size), field);
        return;
    case T_LIST: {
        int count;
        memcpy(&count, (const char *)cfg + k->count_off, sizeof count);
        int max = (int)(k->size / sizeof(double));
        count = count < 0 ? 0 : count > max ? max : count;
        size_t used = 0;
        out[0] = '\0';
        for (int i = 0; i < count && used < n; i++) {
            double x;
            char num[32];
            memcpy(&x, field + (size_t)i * sizeof x, sizeof x);
            format_double(x, num, sizeof num);
            used += (size_t)snprintf(out + used, n - used, "%s%s", i ? "," : "", num);
        }
        return;
    }
    }
}

/* ---- the API */

void dnal_config_defaults(dnal_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (int i = 0; i < N_KEYS; i++) {
        const key_def *k = &keys[i];
        char err[MSG_MAX];
        assert(k->type == T_STRING || k->type == T_ENUM || k->type == T_STAGES ||
               k->size == (k->type == T_BOOL ? sizeof(int) : 8) ||
               (k->type == T_LIST && k->size % sizeof(double) == 0));
        if (set_value(cfg, k, k->def, err, sizeof err)) {
            report("internal error: bad default: %s", err);
            abort();
        }
    }
}

int dnal_config_set(dnal_config *cfg, const char *assignment)
{
    const char *eq = strchr(assignment, '=');
    const char *dot = eq ? memchr(assignment, '.', (size_t)(eq - assignment)) : NULL;
    size_t seclen = dot ? (size_t)(dot - assignment) : 0;
    size_t namelen = dot ? (size_t)(eq - dot - 1) : 0;
    const char *sec = assignment, *name = dot ? dot + 1 : "";
    trim(&sec, &seclen);
    trim(&name, &namelen);
    if (!seclen || !namelen)
        return report("--set %s: expected section.key=value", assignment);
    const key_def *k = find_key(sec, seclen, name, namelen);
    if (!k && !section_known(sec, seclen))
        return report("--set %s: unknown section [%.*s]", assignment, (int)seclen, sec);
    if (!k)
        return report("--set %s: unknown key '%.*s' in section [%.*s]", assignment,
                      (int)namelen, name, (int)seclen, sec);

    const char *v = eq + 1;
    size_t vlen = strlen(v);
    trim(&v, &vlen);
    char *value = strndup(v, vlen);
    if (!value)
        return report("--set %s: out of memory", assignment);
    char err[MSG_MAX];
    int rc = set_value(cfg, k, value, err, sizeof err);
    free(value);
    if (rc)
        return report("--set %s: %s", assignment, err);
    return 0;
}

typedef struct load_ctx {
    dnal_config *cfg;
    FILE *f;
    char *buf;              /* getline's buffer: the whole current line */
    size_t cap;
    int line;               /* lines read so far: the current line */
    uintptr_t inih_line;    /* inih's line buffer and its size, to tell a key */
    size_t inih_size;       /* line from a continuation line */
    int after_key;          /* inih would read an indented line as a continuation */
    int read_errno;
    int err_line;           /* our first error, or 0 */
    char err[MSG_MAX];
} load_ctx;

/* Checks line as a possible [section] header, read the way inih reads it.
 * Returns 1 after recording an unknown section as the error. */
static int check_header(load_ctx *c, const char *line)
{
    const char *s = line;
    if (c->line == 1 && !strncmp(s, "\xEF\xBB\xBF", 3))
        s += 3;
    while (isspace((unsigned char)*s))
        s++;
    if (!*s || strchr(";#", *s))           /* blank or comment */
        return 0;
    if (c->after_key && s > line)          /* continuation of the previous value */
        return 0;
    if (*s != '[')
        return 0;
    const char *e = s + 1;                 /* ']' or an inline comment, whichever first */
    int was_space = 0;
    while (*e && *e != ']' && !(was_space && *e == ';'))
        was_space = isspace((unsigned char)*e++);
    if (*e != ']')                         /* inih reports the line */
        return 0;
    c->after_key = 0;
    if (section_known(s + 1, (size_t)(e - s - 1)))
        return 0;
    c->err_line = c->line;
    snprintf(c->err, sizeof c->err, "unknown section [%.*s]", (int)(e - s - 1), s + 1);
    return 1;
}

static char *read_line(char *str, int num, void *stream)
{
    load_ctx *c = stream;
    if (c->err_line) /* stop at our first error */
        return NULL;
    errno = 0;
    ssize_t len = getline(&c->buf, &c->cap, c->f);
    if (len < 0) {
        if (ferror(c->f))
            c->read_errno = errno ? errno : EIO;
        return NULL;
    }
    c->line++;
    c->inih_line = (uintptr_t)str;
    c->inih_size = (size_t)num;
    size_t content = (size_t)len;
    while (content && (c->buf[content - 1] == '\n' || c->buf[content - 1] == '\r'))
        content--;
    if (num < 3 || content > (size_t)num - 3) { /* inih would split it into two lines */
        c->err_line = c->line;
        snprintf(c->err, sizeof c->err, "line is longer than %d characters", num - 3);
        return NULL;
    }
    if (check_header(c, c->buf))
        return NULL;
    memcpy(str, c->buf, (size_t)len + 1);
    return str;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    load_ctx *c = user;
    if (c->err_line)
        return 0;
    uintptr_t at = (uintptr_t)name;
    if (at < c->inih_line || at >= c->inih_line + c->inih_size) {
        /* inih passes its saved previous name: an indented continuation line */
        snprintf(c->err, sizeof c->err,
                 "indented line continues %s.%s (multi-line values are not supported)", section,
                 name);
        c->err_line = c->line;
        return 0;
    }
    c->after_key = 1;
    const key_def *k = find_key(section, strlen(section), name, strlen(name));
    if (!k && !*section)
        snprintf(c->err, sizeof c->err, "key '%s' is outside any section", name);
    else if (!k && !section_known(section, strlen(section)))
        snprintf(c->err, sizeof c->err, "unknown section [%s]", section);
    else if (!k)
        snprintf(c->err, sizeof c->err, "unknown key '%s' in section [%s]", name, section);
    else if (!set_value(c->cfg, k, value, c->err, sizeof c->err))
        return 1;
    c->err_line = c->line;
    return 0;
}

/* Applies the INI text of stream f, named `path` in messages. */
static int load_stream(dnal_config *cfg, FILE *f, const char *path)
{
    dnal_config work; /* applied to cfg only if the whole file is good */
    memcpy(&work, cfg, sizeof work);
    load_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        fclose(f);
        return report("%s: out of memory", path);
    }
    c->cfg = &work;
    c->f = f;
    int rc = ini_parse_stream(read_line, c, on_key, c);
    free(c->buf);

    int bad = 1;
    if (c->read_errno)
        report("cannot read config file '%s': %s", path, strerror(c->read_errno));
    else if (rc < 0)
        report("%s: out of memory", path);
    else if (rc > 0 && (!c->err_line || rc < c->err_line))
        report("%s:%d: cannot parse the line (expected [section], key = value or a comment)",
               path, rc);
    else if (c->err_line)
        report("%s:%d: %s", path, c->err_line, c->err);
    else
        bad = 0;
    free(c);
    if (!bad)
        memcpy(cfg, &work, sizeof work);
    return bad;
}

int dnal_config_load(dnal_config *cfg, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return report("cannot read config file '%s': %s", path, strerror(errno));
    int bad = load_stream(cfg, f, path);
    fclose(f);
    return bad;
}

int dnal_config_load_text(dnal_config *cfg, const char *text, const char *origin)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    if (!f)
        return report("%s: cannot read the configuration text", origin);
    int bad = load_stream(cfg, f, origin);
    fclose(f);
    return bad;
}

int dnal_config_validate(const dnal_config *cfg)
{
    /* Each value, written out and parsed again, must pass what a file or a
     * --set would have to pass (this catches values set directly in C). */
    dnal_config scratch;
    memcpy(&scratch, cfg, sizeof scratch);
    char text[TEXT_MAX], err[MSG_MAX];
    for (int i = 0; i < N_KEYS; i++) {
        const key_def *k = &keys[i];
        const char *field = (const char *)cfg + k->off;
        int count;
        if ((k->type == T_STRING || k->type == T_ENUM || k->type == T_STAGES) &&
            strnlen(field, k->size) == k->size)
            return report("%s.%s is not NUL-terminated", k->section, k->name);
        if (k->type == T_LIST) {
            memcpy(&count, (const char *)cfg + k->count_off, sizeof count);
            if (count < 0 || (size_t)count > k->size / sizeof(double))
                return report("%s.%s: entry count %d is out of range", k->section, k->name,
                              count);
        }
        format_value(cfg, k, text, sizeof text);
        if (set_value(&scratch, k, text, err, sizeof err))
            return report("%s", err);
    }
    if (!(cfg->search.beta_final >= cfg->search.beta0)) {
        char lo[32], hi[32];
        format_double(cfg->search.beta0, lo, sizeof lo);
        format_double(cfg->search.beta_final, hi, sizeof hi);
        return report("search.beta_final (%s) must be >= search.beta0 (%s)", hi, lo);
    }
    return 0;
}

void dnal_config_write(const dnal_config *cfg, FILE *out)
{
    char text[TEXT_MAX];
    for (int i = 0; i < N_KEYS; i++) {
        const key_def *k = &keys[i];
        if (i == 0 || strcmp(k->section, keys[i - 1].section))
            fprintf(out, "%s[%s]\n", i ? "\n" : "", k->section);
        format_value(cfg, k, text, sizeof text);
        if (*text)
            fprintf(out, "%s = %s\n", k->name, text);
        else
            fprintf(out, "%s =\n", k->name);
    }
}

char *dnal_config_text(const dnal_config *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    dnal_config_write(cfg, f);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
