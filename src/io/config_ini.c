/* Configuration files and text through libinih, using its public API only.
 *
 * inih reads lines through our reader (ini_parse_stream), which sees each
 * line before inih does and tells what inih will make of it from its text,
 * by inih's rules as Debian builds it (multi-line values on, ';' inline
 * comments, a BOM allowed): Debian's inih passes no line number to the
 * handler, so the reader counts lines (the handler runs while the count is
 * at the key's line); an indented line after a key would continue that
 * key's value, which we refuse; and inih reports sections only through the
 * keys in them, so the reader checks [section] headers on the spot: an
 * unknown section is an error even when it is empty. The reader stops at
 * our first error.
 *
 * inih splits a line longer than its buffer (INI_MAX_LINE, 200 in Debian's
 * build) into pieces, but a value may be as long as its field (a path of
 * DNAL_PATH_MAX - 1): the reader takes such a key line's value itself, by
 * inih's rules (the text after the first '=' or ':', an inline comment cut,
 * both ends trimmed), and hands inih the key with a placeholder that no
 * accepted value can be (a control character); the handler swaps the real
 * value back in. A long comment reaches inih as a blank line. So the
 * stored configuration of a checkpoint reads back whatever its length. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "config_internal.h"
#include "dnal/core.h"

enum { NAME_MAX_LEN = 64 }; /* room for any known section or key name */

typedef struct load_ctx {
    dnal_config *cfg;
    FILE *f;
    char *buf;              /* getline's buffer: the whole current line */
    size_t cap;
    int line;               /* lines read so far: the current line */
    char section[NAME_MAX_LEN]; /* the last [section] header */
    char key[NAME_MAX_LEN]; /* the last key since it, or "": an indented line continues it */
    char *long_value;       /* the value of the current line, when inih could not hold it */
    int read_errno;
    int err_line;           /* our first error, or 0 */
    char err[CONFIG_MSG_MAX];
} load_ctx;

/* What inih makes of a line. */
typedef enum line_kind { LINE_NOTHING, LINE_CONTINUATION, LINE_SECTION, LINE_KEY, LINE_BAD } line_kind;

typedef struct line_view {
    line_kind kind;
    const char *name;       /* LINE_SECTION: between the brackets; LINE_KEY: before '=' or ':' */
    size_t len;
} line_view;

/* The first of chars in s, or a ';' after whitespace (an inline comment),
 * or the end: where inih ends a section name or a key. */
static const char *find_chars_or_comment(const char *s, const char *chars)
{
    int was_space = 0;
    while (*s && !strchr(chars, *s) && !(was_space && *s == ';'))
        was_space = isspace((unsigned char)*s++);
    return s;
}

/* Reads line (the lineno-th) as inih does: blank or comment, the
 * continuation of a value (indented, after a key), a [section] header, a
 * key, or a line inih reports as an error. */
static line_view classify_line(const char *line, int lineno, int after_key)
{
    const char *s = line;
    if (lineno == 1 && !strncmp(s, "\xEF\xBB\xBF", 3))
        s += 3;
    while (isspace((unsigned char)*s))
        s++;
    if (!*s || *s == ';' || *s == '#')
        return (line_view){LINE_NOTHING, NULL, 0};
    if (after_key && s > line)
        return (line_view){LINE_CONTINUATION, NULL, 0};
    if (*s == '[') {
        const char *e = find_chars_or_comment(s + 1, "]");
        if (*e != ']')
            return (line_view){LINE_BAD, NULL, 0};
        return (line_view){LINE_SECTION, s + 1, (size_t)(e - s - 1)};
    }
    const char *e = find_chars_or_comment(s, "=:");
    if (*e != '=' && *e != ':')
        return (line_view){LINE_BAD, NULL, 0};
    return (line_view){LINE_KEY, s, (size_t)(e - s)};
}

/* Records the error of the current line; returns NULL, which ends inih's reading. */
static char *stop(load_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *stop(load_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    c->err_line = c->line;
    return NULL;
}

static void remember(char *dst, const char *s, size_t len)
{
    config_trim(&s, &len);
    snprintf(dst, NAME_MAX_LEN, "%.*s", (int)len, s);
}

/* Checks line (already in inih's buffer) before inih reads it, and keeps
 * the section and key that an indented line would continue. */
static char *check_line(load_ctx *c, char *line)
{
    line_view v = classify_line(line, c->line, c->key[0] != '\0');
    switch (v.kind) {
    case LINE_CONTINUATION:
        return stop(c, "indented line continues %s.%s (multi-line values are not supported)",
                    c->section, c->key);
    case LINE_SECTION:
        if (!config_section_known(v.name, v.len))
            return stop(c, "unknown section [%.*s]", (int)v.len, v.name);
        remember(c->section, v.name, v.len);
        c->key[0] = '\0';
        break;
    case LINE_KEY:
        remember(c->key, v.name, v.len);
        break;
    case LINE_NOTHING:
    case LINE_BAD: /* inih reports it */
        break;
    }
    return line;
}

/* A line longer than inih's buffer (num bytes), in c->buf: a key line's
 * value is kept aside (inih gets the key and PLACEHOLDER), a comment or
 * blank line becomes blank; anything else is an error. */
#define PLACEHOLDER "\x01"
static char *long_line(load_ctx *c, char *str, int num, size_t len)
{
    c->buf[len] = '\0';
    line_view v = classify_line(c->buf, c->line, c->key[0] != '\0');
    if (v.kind == LINE_NOTHING && num >= 2) {
        snprintf(str, (size_t)num, "\n");
        return str;
    }
    if (v.kind != LINE_KEY || v.len + 8 > (size_t)num)
        return stop(c, "line is longer than %d characters", num - 3);
    const char *value = v.name + v.len + 1;            /* after '=' or ':' */
    size_t vlen = (size_t)(find_chars_or_comment(value, "") - value);
    config_trim(&value, &vlen);
    c->long_value = dnal_alloc(vlen + 1);
    memcpy(c->long_value, value, vlen);
    c->long_value[vlen] = '\0';
    snprintf(str, (size_t)num, "%.*s = " PLACEHOLDER "\n", (int)v.len, v.name);
    return check_line(c, str);
}

/* inih's reader: the next line into str (num bytes), or NULL at the end,
 * on a read error or after our first error. */
static char *read_line(char *str, int num, void *stream)
{
    load_ctx *c = stream;
    if (c->err_line)
        return NULL;
    errno = 0;
    ssize_t got = getline(&c->buf, &c->cap, c->f);
    if (got < 0) {
        if (ferror(c->f))
            c->read_errno = errno ? errno : EIO;
        return NULL;
    }
    c->line++;
    size_t len = (size_t)got;
    while (len && (c->buf[len - 1] == '\n' || c->buf[len - 1] == '\r'))
        len--;
    free(c->long_value);
    c->long_value = NULL;
    if (num < 3 || len > (size_t)num - 3) /* inih would split it into two lines */
        return long_line(c, str, num, len);
    memcpy(str, c->buf, len); /* inih strips the line end: one '\n' stands for it */
    str[len] = '\n';
    str[len + 1] = '\0';
    return check_line(c, str);
}

/* inih's handler: one key (the reader has checked its section). */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
    load_ctx *c = user;
    if (c->long_value && !strcmp(value, PLACEHOLDER))
        value = c->long_value;
    const key_def *k = config_find_key(section, strlen(section), name, strlen(name));
    if (k && !config_set_value(c->cfg, k, value, c->err, sizeof c->err))
        return 1;
    if (!k && !*section)
        snprintf(c->err, sizeof c->err, "key '%s' is outside any section", name);
    else if (!k)
        snprintf(c->err, sizeof c->err, "unknown key '%s' in section [%s]", name, section);
    c->err_line = c->line;
    return 0;
}

/* Applies the INI text of stream f, named `path` in messages. */
static int load_stream(dnal_config *cfg, FILE *f, const char *path)
{
    dnal_config work; /* applied to cfg only if the whole file is good */
    memcpy(&work, cfg, sizeof work);
    load_ctx *c = dnal_calloc(sizeof *c);
    c->cfg = &work;
    c->f = f;
    int rc = ini_parse_stream(read_line, c, on_key, c);
    free(c->buf);
    free(c->long_value);

    int bad = 1;
    if (c->read_errno)
        config_report("cannot read config file '%s': %s", path, strerror(c->read_errno));
    else if (rc < 0) /* inih's own allocation failed */
        dnal_fatal(DNAL_EXIT_SOFTWARE, "%s: out of memory reading the configuration", path);
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

