/* The configuration readers: the input up to its first NUL is an INI
 * file; each later NUL-separated piece is a --set assignment. A
 * configuration that loads must also write and load again unchanged. */
#include "fuzz.h"
#include "dnal/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    dnal_config cfg;
    dnal_config_defaults(&cfg);
    int bad = dnal_config_load_text(&cfg, text, "fuzz");
    for (size_t at = strlen(text) + 1; at < size; at += strlen(text + at) + 1)
        bad |= dnal_config_set(&cfg, text + at);
    if (!bad) {
        char *out = dnal_config_text(&cfg);
        dnal_config back;
        dnal_config_defaults(&back);
        if (!out || dnal_config_load_text(&back, out, "written") || memcmp(&back, &cfg, sizeof cfg))
            abort(); /* what was accepted must round-trip */
        free(out);
    }
    free(text);
    return 0;
}
