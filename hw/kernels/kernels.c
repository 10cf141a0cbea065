/* chiplane host kernels: the catalogue of core/src/kernels.rs as a shared
 * library that the host device loads at prepare time.
 *
 * Float order matches kernels::reference exactly: c = a, then `repeat`
 * passes of c[i] += b[i] (one pass for the plain adds). Compiled without
 * -ffast-math, so each element sees the same IEEE operations in the same
 * order and the results are bit-identical to the reference. */
#include <stddef.h>
#include <stdint.h>

/* Bumped whenever a signature below changes; the loader checks it. */
uint32_t chiplane_kernels_abi(void) { return 1; }

void chiplane_vector_add(const float *a, const float *b, float *c, size_t n) {
    for (size_t i = 0; i < n; i++) {
        c[i] = a[i] + b[i];
    }
}

void chiplane_repeat_vector_add(const float *a, const float *b, float *c, size_t n, uint64_t repeat) {
    for (size_t i = 0; i < n; i++) {
        c[i] = a[i];
    }
    for (uint64_t r = 0; r < repeat; r++) {
        for (size_t i = 0; i < n; i++) {
            c[i] += b[i];
        }
    }
}

/* The prewarm pattern: byte i of the prepare buffer holds byte (i % 8) of
 * the little-endian word pattern_word(i / 8). */
static inline uint64_t pattern_word(uint64_t w) { return (w * 0x9E3779B97F4A7C15ull) ^ (w >> 7); }

static inline uint8_t pattern_byte(size_t i) { return (uint8_t)(pattern_word(i / 8) >> (8 * (i % 8))); }

/* Fill buf[start..end) with the pattern (the prewarm writes every page of
 * the prepare buffer through this). `buf` is 8-byte aligned; whole words
 * are written as words, the ragged ends byte by byte. */
void chiplane_fill_pattern(uint8_t *buf, size_t start, size_t end) {
    size_t i = start;
    for (; i < end && i % 8 != 0; i++) buf[i] = pattern_byte(i);
    uint64_t *words = (uint64_t *)buf;
    for (; i + 8 <= end; i += 8) words[i / 8] = pattern_word(i / 8);
    for (; i < end; i++) buf[i] = pattern_byte(i);
}

/* Read the whole buffer back and count the 8-byte words (and ragged tail
 * bytes) that do not hold the pattern (the warm-up: 0 means every page was
 * touched and kept). */
size_t chiplane_check_pattern(const uint8_t *buf, size_t len) {
    size_t bad = 0;
    const uint64_t *words = (const uint64_t *)buf;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) bad += words[i / 8] != pattern_word(i / 8);
    for (; i < len; i++) bad += buf[i] != pattern_byte(i);
    return bad;
}
