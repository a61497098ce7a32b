// bytes.c — the small encodings that readers, writers and generators share:
// little-endian integers (MILBlob files, checkpoints), FNV-1a 64 (string
// maps, parameter seeds, checkpoint checksums) and splitmix64 (deterministic
// streams: parameter initialization, the order of training data).
#include "anert.h"

uint64_t rt_get_le(const unsigned char *p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

void rt_put_le(unsigned char *p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++, v >>= 8)
    p[i] = (unsigned char)v;
}

uint64_t rt_fnv1a(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 0x100000001B3ull;
  return h;
}

uint64_t rt_splitmix64(uint64_t *state) { // Vigna's reference code
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
