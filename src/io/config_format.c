/* A field of dnal_config back to text: config_format_value() writes what
 * config_set_value() reads back; and a key's range, accepted values and type
 * as text, for messages and dnal config --list. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

/* Shortest %.Ng (N = 1..17) that reads back as the same double; integral
 * values print without an exponent (10000, not 1e+04). */
void config_format_double(double v, char *buf, size_t n)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    if (strchr(buf, 'e') && v == floor(v) && fabs(v) < 1e15)
        snprintf(buf, n, "%.0f", v);
}

void config_format_value(const dnal_config *cfg, const key_def *k, char *out, size_t n)
{
    const char *field = (const char *)cfg + k->off;
    switch (k->type) {
    case T_INT: {
        int64_t x = 0;
        memcpy(&x, field, sizeof x);
        if (x == 0 && (k->flags & AUTO_ZERO))
            snprintf(out, n, "auto");
        else
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
        config_format_double(x, out, n);
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
            config_format_double(x, num, sizeof num);
            used += (size_t)snprintf(out + used, n - used, "%s%s", i ? "," : "", num);
        }
        return;
    }
    }
}

void config_range_text(const key_def *k, int compact, char *out, size_t n)
{
    const char *space = compact ? "" : " ";
    char lo[32], hi[32];
    if (k->flags & AUTO_ZERO) { /* auto, or the range of the numbers */
        size_t used = (size_t)snprintf(out, n, "auto%s", compact ? "|" : " or ");
        out += used < n ? used : n;
        n -= used < n ? used : n;
    }
    config_format_double(k->lo, lo, sizeof lo);
    if (isinf(k->hi)) {
        snprintf(out, n, "%s%s%s", (k->flags & LO_OPEN) ? ">" : ">=", space, lo);
        return;
    }
    config_format_double(k->hi, hi, sizeof hi);
    snprintf(out, n, "%c%s,%s%s%c", (k->flags & LO_OPEN) ? '(' : '[', lo, space, hi,
             (k->flags & HI_OPEN) ? ')' : ']');
}

void config_accepted(const key_def *k, char *out, size_t n)
{
    switch (k->type) {
    case T_INT:
    case T_U64:
    case T_FLOAT:
        config_range_text(k, 1, out, n);
        return;
    case T_LIST: /* the range of each entry */
        config_range_text(k, 1, out, n);
        snprintf(out + strlen(out), n - strlen(out), ",non-decreasing");
        return;
    case T_BOOL:
        snprintf(out, n, "true|false");
        return;
    case T_STRING:
        snprintf(out, n, "%s", (k->flags & NONEMPTY) ? "non-empty" : "any");
        return;
    case T_ENUM:
    case T_STAGES:
        snprintf(out, n, "%s", k->values);
        return;
    }
}

const char *config_type_name(const key_def *k)
{
    static const char *const names[] = {
        [T_INT] = "int",       [T_U64] = "int",   [T_FLOAT] = "float", [T_BOOL] = "bool",
        [T_STRING] = "string", [T_ENUM] = "enum", [T_LIST] = "list",   [T_STAGES] = "list",
    };
    return names[k->type];
}

void config_values_text(const char *values, char *out, size_t n)
{
    size_t used = 0;
    out[0] = '\0';
    for (const char *v = values; *v && used + 2 < n; v++) {
        if (*v == '|')
            used += (size_t)snprintf(out + used, n - used, ", ");
        else
            out[used++] = *v, out[used] = '\0';
    }
}
