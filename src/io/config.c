/* The run configuration (docs/design.md, "Configuration keys"): the
 * defaults, --set, the checks of a whole configuration and its INI text,
 * all by walking the key table (config_keys.c); files are read in
 * config_ini.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "dnal/models.h"

/* Control characters of echoed values become '?': one line, always. */
int config_report(const char *fmt, ...)
{
    char msg[CONFIG_MSG_MAX + DNAL_PATH_MAX];
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

void dnal_config_defaults(dnal_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (int i = 0; i < config_n_keys; i++) {
        const key_def *k = &config_keys[i];
        char err[CONFIG_MSG_MAX];
        DNAL_ASSERT(k->type == T_STRING || k->type == T_ENUM || k->type == T_STAGES ||
                    k->size == (k->type == T_BOOL ? sizeof(int) : 8) ||
                    (k->type == T_LIST && k->size % sizeof(double) == 0));
        if (config_set_value(cfg, k, k->def, err, sizeof err))
            dnal_fatal(DNAL_EXIT_SOFTWARE, "internal error: bad default: %s", err);
    }
}

int dnal_config_set(dnal_config *cfg, const char *assignment)
{
    const char *eq = strchr(assignment, '=');
    const char *dot = eq ? memchr(assignment, '.', (size_t)(eq - assignment)) : NULL;
    size_t seclen = dot ? (size_t)(dot - assignment) : 0;
    size_t namelen = dot ? (size_t)(eq - dot - 1) : 0;
    const char *sec = assignment, *name = dot ? dot + 1 : "";
    config_trim(&sec, &seclen);
    config_trim(&name, &namelen);
    if (!seclen || !namelen)
        return config_report("--set %s: expected section.key=value", assignment);
    const key_def *k = config_find_key(sec, seclen, name, namelen);
    if (!k && !config_section_known(sec, seclen))
        return config_report("--set %s: unknown section [%.*s]", assignment, (int)seclen, sec);
    if (!k)
        return config_report("--set %s: unknown key '%.*s' in section [%.*s]", assignment,
                             (int)namelen, name, (int)seclen, sec);

    const char *v = eq + 1;
    size_t vlen = strlen(v);
    config_trim(&v, &vlen);
    char *value = dnal_alloc(vlen + 1);
    memcpy(value, v, vlen);
    value[vlen] = '\0';
    char err[CONFIG_MSG_MAX];
    int rc = config_set_value(cfg, k, value, err, sizeof err);
    free(value);
    if (rc)
        return config_report("--set %s: %s", assignment, err);
    return 0;
}

int dnal_config_validate(const dnal_config *cfg)
{
    /* Each value, written out and parsed again, must pass what a file or a
     * --set would have to pass (this catches values set directly in C). */
    dnal_config scratch;
    memcpy(&scratch, cfg, sizeof scratch);
    char text[CONFIG_TEXT_MAX], err[CONFIG_MSG_MAX];
    for (int i = 0; i < config_n_keys; i++) {
        const key_def *k = &config_keys[i];
        const char *field = (const char *)cfg + k->off;
        int count;
        if ((k->type == T_STRING || k->type == T_ENUM || k->type == T_STAGES) &&
            strnlen(field, k->size) == k->size)
            return config_report("%s.%s is not NUL-terminated", k->section, k->name);
        if (k->type == T_LIST) {
            memcpy(&count, (const char *)cfg + k->count_off, sizeof count);
            if (count < 0 || (size_t)count > k->size / sizeof(double))
                return config_report("%s.%s: entry count %d is out of range", k->section,
                                     k->name, count);
        }
        config_format_value(cfg, k, text, sizeof text);
        if (config_set_value(&scratch, k, text, err, sizeof err))
            return config_report("%s", err);
    }
    if (!(cfg->search.beta_final >= cfg->search.beta0)) {
        char lo[32], hi[32];
        config_format_double(cfg->search.beta0, lo, sizeof lo);
        config_format_double(cfg->search.beta_final, hi, sizeof hi);
        return config_report("search.beta_final (%s) must be >= search.beta0 (%s)", hi, lo);
    }
    if (!strcmp(cfg->search.regularizer, "latency") && !cfg->search.latency_table[0])
        return config_report("search.regularizer=latency needs search.latency_table (the "
                             "table dnal profile writes)");
    if (cfg->search.latency_target > 0 && !cfg->search.latency_table[0])
        return config_report("search.latency_target needs search.latency_table (the table "
                             "dnal profile writes)");
    if (cfg->search.latency_target > 0 && cfg->search.flops_target > 0)
        return config_report("search.flops_target and search.latency_target are both set: a "
                             "run has one budget");
    if (!dnal_model_find(cfg->model.name)) { /* before a run opens its data */
        char known[512];
        dnal_model_names(known, sizeof known);
        return config_report("model.name: unknown model '%s' (known: %s)", cfg->model.name, known);
    }
    if (!strcmp(cfg->model.name, DNAL_MODEL_ONNX) && (!cfg->model.path[0] || cfg->model.width != 1))
        return config_report("model.name=onnx takes model.path=FILE.onnx and model.width=1 (the "
                             "file fixes the widths)");
    if (strcmp(cfg->model.name, DNAL_MODEL_ONNX) && (cfg->model.path[0] || cfg->model.no_gate[0]))
        return config_report("model.path and model.no_gate are for model.name=onnx (not %s)",
                             cfg->model.name);
    dnal_model_cfg m = {.name = cfg->model.name, .gate_stem = cfg->model.gate_stem,
                        .classifier_bn = cfg->model.classifier_bn};
    const char *why = dnal_model_options_refused(&m);
    if (why)
        return config_report("%s", why);
    if (cfg->search.weight_decay < 0 && cfg->search.weight_decay != -1)
        return config_report("search.weight_decay must be >= 0, or -1 for pretrain.weight_decay");
    return 0;
}

void dnal_config_write(const dnal_config *cfg, FILE *out)
{
    char text[CONFIG_TEXT_MAX];
    for (int i = 0; i < config_n_keys; i++) {
        const key_def *k = &config_keys[i];
        if (i == 0 || strcmp(k->section, config_keys[i - 1].section))
            fprintf(out, "%s[%s]\n", i ? "\n" : "", k->section);
        config_format_value(cfg, k, text, sizeof text);
        if (*text == ';') /* after "= " it would start an inline comment */
            fprintf(out, "%s =%s\n", k->name, text);
        else if (*text)
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
