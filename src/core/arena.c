/* Aligned allocation and flat arenas. */
#include <stdlib.h>
#include <string.h>

#include "dnal/core.h"

enum { ALIGN = 64 };

void *dnal_alloc(size_t bytes)
{
    void *p = NULL;
    size_t rounded = (bytes + ALIGN - 1) / ALIGN * ALIGN;
    if (rounded == 0)
        rounded = ALIGN;
    if (posix_memalign(&p, ALIGN, rounded) != 0)
        dnal_fatal(DNAL_EXIT_USAGE, "out of memory allocating %zu bytes", bytes);
    return p;
}

void *dnal_calloc(size_t bytes)
{
    void *p = dnal_alloc(bytes);
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
