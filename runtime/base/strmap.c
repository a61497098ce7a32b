// strmap.c — string-keyed hash map with open addressing, allocated in an
// arena: the symbol tables of the elaborator and the MIL reader.
#include "base.h"

#include <string.h>

void strmap_init(StrMap *m, Arena *a) {
  *m = (StrMap){.arena = a};
}

static uint64_t hash_str(const char *s) {
  return rt_fnv1a(RT_FNV_OFFSET, s, strlen(s));
}

static StrMapEntry *find_slot(StrMapEntry *slots, size_t cap, const char *key) {
  for (size_t i = hash_str(key) & (cap - 1);; i = (i + 1) & (cap - 1))
    if (!slots[i].key || !strcmp(slots[i].key, key))
      return &slots[i];
}

static void grow(StrMap *m) {
  size_t cap = m->cap ? 2 * m->cap : 16;
  StrMapEntry *slots = arena_alloc(m->arena, cap * sizeof *slots);
  for (size_t i = 0; i < m->cap; i++)
    if (m->slots[i].key)
      *find_slot(slots, cap, m->slots[i].key) = m->slots[i];
  m->slots = slots;
  m->cap = cap;
}

void *strmap_get(const StrMap *m, const char *key) {
  if (!m->cap)
    return NULL;
  StrMapEntry *e = find_slot(m->slots, m->cap, key);
  return e->key ? e->value : NULL;
}

void strmap_put(StrMap *m, const char *key, void *value) {
  if (2 * (m->len + 1) > m->cap)
    grow(m);
  StrMapEntry *e = find_slot(m->slots, m->cap, key);
  if (!e->key) {
    e->key = key;
    m->len++;
  }
  e->value = value;
}
