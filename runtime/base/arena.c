// arena.c — bump allocation for one compilation: every AST node, graph node
// and string of a compile lives here and is freed at once by arena_free.
#include "base.h"

#include <stdlib.h>
#include <string.h>

struct ArenaBlock {
  ArenaBlock *next;
  size_t size, used;
  _Alignas(16) unsigned char data[];
};

enum { BLOCK_SIZE = 1 << 20 };

static ArenaBlock *block_new(size_t size) {
  ArenaBlock *b = malloc(sizeof(ArenaBlock) + size);
  if (!b) {
    fputs("anec: fatal: out of memory\n", stderr);
    abort();
  }
  b->next = NULL;
  b->size = size;
  b->used = 0;
  return b;
}

void *arena_alloc(Arena *a, size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (!a->head || a->head->size - a->head->used < n) {
    ArenaBlock *b = block_new(n > BLOCK_SIZE ? n : BLOCK_SIZE);
    b->next = a->head;
    a->head = b;
  }
  void *p = a->head->data + a->head->used;
  a->head->used += n;
  a->total += n;
  memset(p, 0, n);
  return p;
}

void *arena_grow(Arena *a, void *old, size_t old_n, size_t new_n) {
  void *p = arena_alloc(a, new_n);
  if (old && old_n)
    memcpy(p, old, old_n < new_n ? old_n : new_n);
  return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n) {
  char *p = arena_alloc(a, n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

char *arena_strdup(Arena *a, const char *s) {
  return arena_strndup(a, s, strlen(s));
}

char *arena_printf(Arena *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *p = arena_alloc(a, (size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(p, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return p;
}

void arena_free(Arena *a) {
  for (ArenaBlock *b = a->head, *next; b; b = next) {
    next = b->next;
    free(b);
  }
  a->head = NULL;
  a->total = 0;
}
