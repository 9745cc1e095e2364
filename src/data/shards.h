/* The shard format of `dnal prep` (not installed). One split is a set of
 * files <split>-NNNNN.dnshard in one folder, each:
 *
 *   magic "DNALSHRD", u32 version (1), u32 classes, u64 count,
 *   u64 names_bytes, u64 index_offset, u64 data_offset        (48 bytes)
 *   class names: `classes` NUL-terminated strings (the folder names)
 *   index: count records {u64 offset, u32 label, u16 h, u16 w}
 *   pixels: per image h x w x 3 bytes (RGB), at its offset
 *
 * Little-endian (the byte order of x86-64 and aarch64). Every shard of a
 * split carries the same class names; shard k holds images k*P .. k*P+P-1
 * of the folder reader's order (round robin over the classes), less the
 * files that could not be decoded. Images keep their aspect ratio: the
 * shorter side is the prep size, the longer side at most 4/3 of it (its
 * center), so random-resized-crop still has room. */
#ifndef DNAL_DATA_SHARDS_H
#define DNAL_DATA_SHARDS_H

#include <stdint.h>

#define SHARD_MAGIC "DNALSHRD"
enum { SHARD_VERSION = 1, SHARD_HEADER_BYTES = 48 };

typedef struct shard_record {
    uint64_t offset;
    uint32_t label;
    uint16_t h, w;
} shard_record;

typedef struct shard_header {
    uint32_t version, classes;
    uint64_t count, names_bytes, index_offset, data_offset;
} shard_header;

#endif
