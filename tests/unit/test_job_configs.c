/* Every run config in jobs/configs/ loads, validates and names a model of
 * the zoo: a typo there would only show on a cluster. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnal/io.h"
#include "dnal/models.h"
#include "tap.h"

int main(void)
{
    const char *dir = getenv("CONFIGS");
    if (!dir)
        dir = "jobs/configs";
    DIR *d = opendir(dir);
    if (!tap_ok(d != NULL, "open %s", dir))
        return tap_done();
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".ini"))
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        dnal_config cfg;
        dnal_config_defaults(&cfg);
        int ok = dnal_config_load(&cfg, path) == 0 && dnal_config_validate(&cfg) == 0;
        tap_ok(ok && dnal_model_find(cfg.model.name) != NULL, "%s loads and names a known model (%s)",
               e->d_name, cfg.model.name);
        count++;
    }
    closedir(d);
    tap_ok(count >= 4, "%d run configs found", count);
    return tap_done();
}
