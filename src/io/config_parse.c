/* A value's text to its field of dnal_config, by the key table's type and
 * range: every value of a file, a --set or a default goes through
 * config_set_value() (config_format.c turns a field back into text). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_internal.h"
#include "dnal/core.h"

static int fail(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return 1;
}

void config_trim(const char **s, size_t *len)
{
    while (*len && isspace((unsigned char)**s))
        (*s)++, (*len)--;
    while (*len && isspace((unsigned char)(*s)[*len - 1]))
        (*len)--;
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

static int check_range(const key_def *k, double x, char *err, size_t n)
{
    int lo_ok = (k->flags & LO_OPEN) ? x > k->lo : x >= k->lo;
    int hi_ok = isinf(k->hi) || ((k->flags & HI_OPEN) ? x < k->hi : x <= k->hi);
    if (lo_ok && hi_ok)
        return 0;
    char range[80];
    config_range_text(k, 0, range, sizeof range);
    return fail(err, n, "%s.%s must be %s%s", k->section, k->name, isinf(k->hi) ? "" : "in ",
                range);
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
    if ((k->flags & AUTO_ZERO) && !strcasecmp(s, "auto"))
        return *out = 0, 0;
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

/* Enum values match case-insensitively and are stored as the table spells
 * them. */
static int parse_enum(const key_def *k, const char *s, char *field, char *err, size_t n)
{
    const char *v;
    size_t vlen, len = strlen(s);
    if (config_find_value(k->values, s, len, &v, &vlen) >= 0) {
        DNAL_ASSERT(vlen < k->size);
        memset(field, 0, k->size);
        memcpy(field, v, vlen);
        return 0;
    }
    char list[256];
    config_values_text(k->values, list, sizeof list);
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
    config_trim(&s, &all);
    if (!all)
        return 0;
    for (const char *p = s;;) {
        size_t len = strcspn(p, ",");
        const char *next = p + len;
        const char *e = p;
        config_trim(&e, &len);
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

/* The stages named so far, as the table spells them, comma-separated. */
typedef struct stages_acc {
    unsigned seen;
    char text[CONFIG_TEXT_MAX];
} stages_acc;

static int stage_entry(const key_def *k, const char *e, size_t len, void *acc, char *err,
                       size_t n)
{
    stages_acc *st = acc;
    const char *v;
    size_t vlen;
    int i = config_find_value(k->values, e, len, &v, &vlen);
    if (i < 0) {
        char list[256];
        config_values_text(k->values, list, sizeof list);
        return fail(err, n, "%s.%s: '%.*s' is not one of %s", k->section, k->name, (int)len, e,
                    list);
    }
    DNAL_ASSERT(i < 32); /* seen has a bit for each */
    if (st->seen & 1u << i)
        return fail(err, n, "%s.%s: '%.*s' is listed twice", k->section, k->name, (int)vlen, v);
    st->seen |= 1u << i;
    size_t used = strlen(st->text); /* fits: each of the table's names at most once */
    snprintf(st->text + used, sizeof st->text - used, "%s%.*s", used ? "," : "", (int)vlen, v);
    return 0;
}

int config_set_value(dnal_config *cfg, const key_def *k, const char *s, char *err, size_t n)
{
    char *field = (char *)cfg + k->off;
    union { /* a number, copied into the field only once it parsed */
        int64_t i;
        uint64_t u;
        double d;
        int b;
    } v = {0};
    int bad = 0;
    size_t bytes = 0;
    switch (k->type) {
    case T_INT: bad = parse_int(k, s, &v.i, err, n), bytes = sizeof v.i; break;
    case T_U64: bad = parse_u64(k, s, &v.u, err, n), bytes = sizeof v.u; break;
    case T_FLOAT: bad = parse_double(k, s, strlen(s), &v.d, err, n), bytes = sizeof v.d; break;
    case T_BOOL: bad = parse_bool(k, s, &v.b, err, n), bytes = sizeof v.b; break;
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
        if (!st.seen) {
            char list[256];
            config_values_text(k->values, list, sizeof list);
            return fail(err, n, "%s.%s: must list at least one of %s", k->section, k->name, list);
        }
        return parse_string(k, st.text, field, err, n);
    }
    }
    DNAL_ASSERT(bytes > 0); /* a number type */
    if (!bad)
        memcpy(field, &v, bytes);
    return bad;
}
