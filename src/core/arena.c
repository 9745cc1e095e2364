/* Aligned allocation and flat arenas. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dnal/core.h"

enum { ALIGN = 64 };

static _Noreturn void out_of_memory(size_t bytes, const char *file, int line)
{
    dnal_fatal_at(DNAL_EXIT_SOFTWARE, file, line, "out of memory allocating %zu bytes", bytes);
}

/* NULL if the memory is not there (or the size wraps around) */
static void *try_alloc(size_t bytes)
{
    void *p = NULL;
    if (bytes > SIZE_MAX - ALIGN)
        return NULL;
    size_t rounded = (bytes + ALIGN - 1) / ALIGN * ALIGN;
    if (rounded == 0)
        rounded = ALIGN;
    return posix_memalign(&p, ALIGN, rounded) == 0 ? p : NULL;
}

void *dnal_alloc_at(size_t bytes, const char *file, int line)
{
    void *p = try_alloc(bytes);
    if (!p)
        out_of_memory(bytes, file, line);
    return p;
}

void *dnal_calloc_at(size_t bytes, const char *file, int line)
{
    void *p = dnal_alloc_at(bytes, file, line);
    memset(p, 0, bytes);
    return p;
}

void *dnal_realloc_at(void *p, size_t bytes, const char *file, int line)
{
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q)
        out_of_memory(bytes, file, line);
    return q;
}

char *dnal_strdup_at(const char *s, const char *file, int line)
{
    size_t n = strlen(s) + 1;
    char *d = dnal_alloc_at(n, file, line);
    memcpy(d, s, n);
    return d;
}

void *dnal_alloc_input(size_t count, size_t size, size_t limit, const char *origin,
                       const char *what)
{
    if (size && count > SIZE_MAX / size)
        dnal_fatal(DNAL_EXIT_DATA, "%s: %s: %zu x %zu bytes is more than memory can address",
                   origin, what, count, size);
    size_t bytes = count * size;
    if (limit && bytes > limit)
        dnal_fatal(DNAL_EXIT_DATA, "%s: %s: %zu bytes exceed the limit of %zu (corrupt file?)",
                   origin, what, bytes, limit);
    void *p = try_alloc(bytes);
    if (!p)
        dnal_fatal(DNAL_EXIT_DATA, "%s: %s: cannot allocate %zu bytes (corrupt file, or too "
                   "little memory for it)", origin, what, bytes);
    memset(p, 0, bytes);
    return p;
}

void dnal_free(void *p)
{
    free(p);
}

size_t dnal_arena_reserve(dnal_arena *a, size_t bytes)
{
    DNAL_ASSERT(a->base == NULL);
    size_t off = (a->bytes + ALIGN - 1) / ALIGN * ALIGN;
    a->bytes = off + bytes;
    return off;
}

void dnal_arena_commit(dnal_arena *a)
{
    DNAL_ASSERT(a->base == NULL);
    a->base = dnal_calloc(a->bytes);
}

void *dnal_arena_at(const dnal_arena *a, size_t offset)
{
    DNAL_ASSERT(a->base != NULL && offset <= a->bytes);
    return a->base + offset;
}

void dnal_arena_release(dnal_arena *a)
{
    dnal_free(a->base);
    a->base = NULL;
    a->bytes = 0;
}
