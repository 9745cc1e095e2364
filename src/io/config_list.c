/* The key table as text (dnal config --list), pasted verbatim into
 * docs/design.md: one key a line, in the table's order, in aligned columns
 *
 *   section.key  type  default  accepted  description
 *
 * The default is what `dnal config` prints for the key ("" when empty).
 * Every column but the description is one word, so awk '{print $1, $3}'
 * reads keys and defaults. A column is as wide as its widest cell of at most
 * WIDE characters: a longer cell (the datasets, the stages) pushes the rest
 * of its own line to the right instead of widening the column for all. */
#include <stdio.h>
#include <string.h>

#include "config_internal.h"

enum { N_COLS = 4, WIDE = 24, GAP = 2, CELL_MAX = 256 };

static void key_cells(const dnal_config *defaults, const key_def *k, char cell[N_COLS][CELL_MAX])
{
    snprintf(cell[0], CELL_MAX, "%s.%s", k->section, k->name);
    snprintf(cell[1], CELL_MAX, "%s", config_type_name(k));
    config_format_value(defaults, k, cell[2], CELL_MAX);
    if (!cell[2][0])
        snprintf(cell[2], CELL_MAX, "\"\"");
    config_accepted(k, cell[3], CELL_MAX);
}

static void column_widths(const dnal_config *defaults, size_t width[N_COLS])
{
    char cell[N_COLS][CELL_MAX];
    memset(width, 0, N_COLS * sizeof width[0]);
    for (int i = 0; i < config_n_keys; i++) {
        key_cells(defaults, &config_keys[i], cell);
        for (int c = 0; c < N_COLS; c++) {
            size_t len = strlen(cell[c]);
            if (len <= WIDE && len > width[c])
                width[c] = len;
        }
    }
}

void dnal_config_list(FILE *out)
{
    dnal_config defaults;
    dnal_config_defaults(&defaults);
    size_t width[N_COLS];
    column_widths(&defaults, width);
    char cell[N_COLS][CELL_MAX];
    for (int i = 0; i < config_n_keys; i++) {
        key_cells(&defaults, &config_keys[i], cell);
        size_t used = 0, column = 0; /* characters printed; where the next column starts */
        for (int c = 0; c < N_COLS; c++) {
            used += (size_t)fprintf(out, "%s", cell[c]);
            column += width[c] + GAP;
            if (column < used + GAP) /* a long cell: the next one starts after a gap */
                column = used + GAP;
            used += (size_t)fprintf(out, "%*s", (int)(column - used), "");
        }
        fprintf(out, "%s\n", config_keys[i].doc);
    }
}

int dnal_config_key_count(void)
{
    return config_n_keys;
}
