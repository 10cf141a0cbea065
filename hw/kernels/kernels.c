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

/* Fill buf[start..end) with a pattern derived from the byte offset (the
 * prewarm writes every page of the prepare buffer through this). */
void chiplane_fill_pattern(uint8_t *buf, size_t start, size_t end) {
    for (size_t i = start; i < end; i++) {
        buf[i] = (uint8_t)((i * 131u) ^ (i >> 12));
    }
}

/* Read the whole buffer back and count the bytes that do not hold the
 * pattern (the warm-up: 0 means every page was touched and kept). */
size_t chiplane_check_pattern(const uint8_t *buf, size_t len) {
    size_t bad = 0;
    for (size_t i = 0; i < len; i++) {
        bad += buf[i] != (uint8_t)((i * 131u) ^ (i >> 12));
    }
    return bad;
}
