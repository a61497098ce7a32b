// bytes.c — the small encodings that readers, writers and generators share:
// little-endian integers (MILBlob files, checkpoints), FNV-1a 64 (string
// maps, parameter seeds, checkpoint checksums), splitmix64 (deterministic
// streams: parameter initialization, the order of training data) and the
// normal initializer of parameters that the compiler and the trainer share.
#include "base.h"

#include <math.h>
#include <string.h>

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

void rt_fill_normal(float *v, int64_t n, double std, const char *name, uint64_t seed) {
  seed ^= rt_fnv1a(RT_FNV_OFFSET, name, strlen(name));
  for (int64_t i = 0; i < n; i += 2) { // Box-Muller: two values a pair of draws
    double u1 = ((double)(rt_splitmix64(&seed) >> 11) + 1) * 0x1p-53;
    double u2 = (double)(rt_splitmix64(&seed) >> 11) * 0x1p-53;
    double r = sqrt(-2 * log(u1)) * std;
    v[i] = (float)(r * cos(6.283185307179586 * u2));
    if (i + 1 < n)
      v[i + 1] = (float)(r * sin(6.283185307179586 * u2));
  }
}
