// capture.h — the fixture shared by the compiler's unit tests: an arena and a
// Diag whose output is captured in memory, so tests can compare diagnostics.
#ifndef CAPTURE_H
#define CAPTURE_H

#include "driver.h"

#include <stdlib.h>

typedef struct Capture {
  Arena arena;
  Diag d;
  FILE *out; // diagnostics, into buf
  char *buf;
  size_t len;
} Capture;

static inline bool capture_open(Capture *c) {
  c->out = open_memstream(&c->buf, &c->len);
  if (!c->out)
    return false;
  diag_init(&c->d, c->out);
  return true;
}

static inline void capture_close(Capture *c) {
  fclose(c->out);
  free(c->buf);
  diag_free(&c->d);
  arena_free(&c->arena);
}

// The diagnostics written so far.
static inline const char *capture_text(Capture *c) {
  fflush(c->out);
  return c->buf ? c->buf : "";
}

#endif
