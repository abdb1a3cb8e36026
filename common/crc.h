/* crc.h - the CRCs S3 uses for object checksums: CRC32 (ISO-HDLC, zlib's), CRC32C
 * (Castagnoli) and CRC64NVME (the NVMe CRC64, S3's default), all reflected with inverted
 * initial value and output, so a value is the finished CRC and updates chain:
 *
 *     crc = crc32_update(0, a, na); crc = crc32_update(crc, b, nb);   == CRC of a||b
 *
 * and *_combine(crc(a), crc(b), len(b)) gives the CRC of a||b without the bytes, which
 * is how a multipart upload's full-object CRC is made from its parts' CRCs.
 * Slice-by-8 tables (built once, thread-safe); CRC32C uses the SSE4.2 instruction
 * where the processor has it. */
#ifndef VIRGA_CRC_H
#define VIRGA_CRC_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32_update(uint32_t crc, const void *buf, size_t len);
uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len);
uint64_t crc64nvme_update(uint64_t crc, const void *buf, size_t len);

uint32_t crc32_combine(uint32_t crc1, uint32_t crc2, uint64_t len2);
uint32_t crc32c_combine(uint32_t crc1, uint32_t crc2, uint64_t len2);
uint64_t crc64nvme_combine(uint64_t crc1, uint64_t crc2, uint64_t len2);

#endif
