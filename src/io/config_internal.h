/* The configuration's key table and what src/io/config*.c share (not
 * installed):
 *   config_keys.c   the table: every key, its field, default, accepted values, description
 *   config_parse.c  a value's text to its field, ranges
 *   config_format.c a field back to text; ranges, accepted values, types as text
 *   config_ini.c    files and text through libinih
 *   config_list.c   the table as text (dnal config --list)
 *   config.c        defaults, --set, validation, the written INI */
#ifndef DNAL_IO_CONFIG_INTERNAL_H
#define DNAL_IO_CONFIG_INTERNAL_H

#include <stddef.h>

#include "dnal/config.h"

enum key_type { T_INT, T_U64, T_FLOAT, T_BOOL, T_STRING, T_ENUM, T_LIST, T_STAGES };
enum { LO_OPEN = 1, HI_OPEN = 2, NONEMPTY = 4, AUTO_ZERO = 8 };

typedef struct key_def {
    const char *section, *name;
    enum key_type type;
    size_t off, size;       /* the field in dnal_config */
    const char *def;        /* the default, as INI text */
    const char *values;     /* T_ENUM, T_STAGES: the accepted values, '|'-separated */
    double lo, hi;          /* numbers and list entries: the accepted range */
    unsigned flags;         /* LO_OPEN, HI_OPEN: bound excluded; NONEMPTY: strings;
                               AUTO_ZERO: T_INT also takes `auto`, stored as 0 */
    size_t count_off;       /* T_LIST: the int that counts the entries */
    const char *doc;        /* what the key does, one line for a researcher */
} key_def;

extern const key_def config_keys[];
extern const int config_n_keys;

/* Room for an error message and for any value as text (a path, a list). */
enum { CONFIG_MSG_MAX = 2 * DNAL_PATH_MAX + 256, CONFIG_TEXT_MAX = 2 * DNAL_PATH_MAX };

/* config_keys.c: lookups by name; config_section_known and config_find_key
 * trim the names first. */
int config_section_known(const char *s, size_t len);
const key_def *config_find_key(const char *sec, size_t seclen, const char *name, size_t namelen);
/* The index of the entry of values ('|'-separated, may be NULL) that
 * s[0..len) names, case-insensitively, with where it starts and its
 * length; -1 if none. */
int config_find_value(const char *values, const char *s, size_t len, const char **v,
                      size_t *vlen);

/* config_parse.c */
void config_trim(const char **s, size_t *len);
/* Parses the text value s into k's field of cfg. The field changes only on
 * success. 0, or 1 with the message (naming the key) in err. */
int config_set_value(dnal_config *cfg, const key_def *k, const char *s, char *err, size_t n);
/* config_format.c: k's field of cfg as INI text (what config_set_value reads back). */
void config_format_value(const dnal_config *cfg, const key_def *k, char *out, size_t n);
/* Shortest text that reads back as the same double. */
void config_format_double(double v, char *buf, size_t n);
/* k's range: ">= 1", "> 0", "[0, 1)" ("auto or >= 1" for AUTO_ZERO); compact:
 * without spaces ("auto|>=1"). */
void config_range_text(const key_def *k, int compact, char *out, size_t n);
/* What k accepts, without spaces: ">=1", "[0,1)", "staged|joint", "true|false". */
void config_accepted(const key_def *k, char *out, size_t n);
/* values ('|'-separated) as "a, b, c", for messages. */
void config_values_text(const char *values, char *out, size_t n);
/* k's type in words: int, float, bool, string, enum or list. */
const char *config_type_name(const key_def *k);

/* config.c: prints "dnal: error: ..." as exactly one line. Returns 1. */
int config_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
