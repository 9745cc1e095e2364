/* Configuration files and text through libinih.
 *
 * Files are read with libinih through our own line reader. Debian's inih
 * passes no line number to the handler, so the reader counts lines (the
 * handler runs while the count is at the key's line). inih reports sections
 * only through the keys in them, so the reader also recognises [section]
 * headers the way inih does and checks them on the spot: an unknown section
 * is an error even when it is empty. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "config_internal.h"

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
    char err[CONFIG_MSG_MAX];
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
    if (config_section_known(s + 1, (size_t)(e - s - 1)))
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
    const key_def *k = config_find_key(section, strlen(section), name, strlen(name));
    if (!k && !*section)
        snprintf(c->err, sizeof c->err, "key '%s' is outside any section", name);
    else if (!k && !config_section_known(section, strlen(section)))
        snprintf(c->err, sizeof c->err, "unknown section [%s]", section);
    else if (!k)
        snprintf(c->err, sizeof c->err, "unknown key '%s' in section [%s]", name, section);
    else if (!config_set_value(c->cfg, k, value, c->err, sizeof c->err))
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
        return config_report("%s: out of memory", path);
    }
    c->cfg = &work;
    c->f = f;
    int rc = ini_parse_stream(read_line, c, on_key, c);
    free(c->buf);

    int bad = 1;
    if (c->read_errno)
        config_report("cannot read config file '%s': %s", path, strerror(c->read_errno));
    else if (rc < 0)
        config_report("%s: out of memory", path);
    else if (rc > 0 && (!c->err_line || rc < c->err_line))
        config_report("%s:%d: cannot parse the line (expected [section], key = value or a comment)",
               path, rc);
    else if (c->err_line)
        config_report("%s:%d: %s", path, c->err_line, c->err);
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
        return config_report("cannot read config file '%s': %s", path, strerror(errno));
    int bad = load_stream(cfg, f, path);
    fclose(f);
    return bad;
}

int dnal_config_load_text(dnal_config *cfg, const char *text, const char *origin)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    if (!f)
        return config_report("%s: cannot read the configuration text", origin);
    int bad = load_stream(cfg, f, origin);
    fclose(f);
    return bad;
}

