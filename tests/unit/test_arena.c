/* Flat arenas: aligned offsets, zeroed commit, pointer arithmetic. */
#include <stdint.h>

#include "dnal/core.h"
#include "tap.h"

int main(void)
{
    dnal_arena a = {0};
    size_t o1 = dnal_arena_reserve(&a, 10);
    size_t o2 = dnal_arena_reserve(&a, 100);
    size_t o3 = dnal_arena_reserve(&a, 0);
    size_t o4 = dnal_arena_reserve(&a, 1);
    tap_ok(o1 == 0 && o2 == 64 && o3 == 192 && o4 == 192, "offsets are 64-byte aligned (%zu %zu %zu %zu)",
           o1, o2, o3, o4);
    dnal_arena_commit(&a);
    char *base = dnal_arena_at(&a, 0);
    tap_ok(((uintptr_t)base & 63) == 0, "committed block is 64-byte aligned");
    int zero = 1;
    for (size_t i = 0; i < a.bytes; i++)
        zero &= base[i] == 0;
    tap_ok(zero, "committed block is zeroed (%zu bytes)", a.bytes);
    tap_ok((char *)dnal_arena_at(&a, o2) == base + 64, "region pointer = base + offset");
    dnal_arena_release(&a);
    tap_ok(a.base == NULL && a.bytes == 0, "release empties the arena");
    return tap_done();
}
