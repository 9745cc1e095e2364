/* dnal io: the run configuration's INI form, and later the HDF5 run log and
 * checkpoints. The configuration struct itself (dnal_config) belongs to the
 * run (include/dnal/search.h); io reads and writes its text.
 *
 * Configuration (DESIGN.md section 5): every key has a default; a file and
 * any number of `--set section.key=value` overrides are applied in order; an
 * unknown section or key, or a value that does not parse or is out of range,
 * is an error naming the key and where it came from (FILE:LINE or --set),
 * with exit code 1, before any work starts. */
#ifndef DNAL_IO_H
#define DNAL_IO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dnal/search.h"

/* The built-in defaults (the default run of `dnal search`). */
void dnal_config_defaults(dnal_config *cfg);
/* Applies an INI file. Returns 0, or prints "dnal: error: FILE:LINE: ..." and returns 1. */
int dnal_config_load(dnal_config *cfg, const char *path);
/* Applies one "section.key=value". Returns 0, or prints the error and returns 1. */
int dnal_config_set(dnal_config *cfg, const char *assignment);
/* Checks the values together (e.g. a stage list of known names). 0 or 1 as above. */
int dnal_config_validate(const dnal_config *cfg);
/* The resolved configuration as INI text, every key, sections in DESIGN order. */
void dnal_config_write(const dnal_config *cfg, FILE *out);
/* The same into a newly allocated string (for the run log); free() it. */
char *dnal_config_text(const dnal_config *cfg);

#endif
