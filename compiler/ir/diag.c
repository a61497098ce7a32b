// diag.c — the registered source files and GCC-style diagnostics: a
// `file:line:col: level: msg` header, the quoted source line and a caret with
// ~~~ under the range. Also the error cap and "did you mean" suggestions.
#include "ir.h"

#include <stdlib.h>
#include <string.h>

static const char *const level_names[] = {"error", "warning", "note"};

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (!p) {
    fputs("anec: fatal: out of memory\n", stderr);
    abort();
  }
  return p;
}

void diag_init(Diag *d, FILE *out) {
  memset(d, 0, sizeof *d);
  d->out = out ? out : stderr;
  d->max_errors = 20;
  d->last_shown = true;
}

void diag_free(Diag *d) {
  for (int i = 0; i < d->nfiles; i++) {
    free(d->files[i].name);
    free(d->files[i].text);
    free(d->files[i].lines);
  }
  free(d->files);
  d->files = NULL;
  d->nfiles = d->capfiles = 0;
}

int diag_add_file(Diag *d, const char *name, const char *text, size_t len) {
  if (d->nfiles == d->capfiles) {
    d->capfiles = d->capfiles ? 2 * d->capfiles : 8;
    d->files = xrealloc(d->files, sizeof(SrcFile) * (size_t)d->capfiles);
  }
  SrcFile *f = &d->files[d->nfiles];
  size_t n = strlen(name);
  f->name = xrealloc(NULL, n + 1);
  memcpy(f->name, name, n + 1);
  f->text = xrealloc(NULL, len + 1);
  if (len)
    memcpy(f->text, text, len);
  f->text[len] = '\0';
  f->len = len;
  f->lines = NULL;
  f->nlines = 0;
  return d->nfiles++;
}

SrcLoc loc_none(void) {
  return (SrcLoc){.file = -1};
}

SrcLoc loc_span(SrcLoc a, SrcLoc b) {
  if (a.file < 0)
    return b;
  if (b.file != a.file)
    return a;
  a.last_line = b.last_line;
  a.last_column = b.last_column;
  return a;
}

//
// Source lines
//

// Builds f->lines on first use: the offset where each line starts. A final
// empty line (after the last '\n', or in an empty file) does not count.
static void file_index(SrcFile *f) {
  if (f->lines)
    return;
  size_t n = 1, cap = 1024;
  f->lines = xrealloc(NULL, cap * sizeof(size_t));
  f->lines[0] = 0;
  const char *end = f->text + f->len;
  for (const char *p = f->text; (p = memchr(p, '\n', (size_t)(end - p))); p++) {
    if (n == cap)
      f->lines = xrealloc(f->lines, (cap *= 2) * sizeof(size_t));
    f->lines[n++] = (size_t)(p + 1 - f->text);
  }
  if (f->lines[n - 1] == f->len)
    n--;
  f->nlines = (int)n;
}

// The bytes of line `line` (1-based) without its '\n', or NULL past the end.
static const char *file_line(SrcFile *f, int line, size_t *len) {
  file_index(f);
  if (line < 1 || line > f->nlines)
    return NULL;
  const char *p = f->text + f->lines[line - 1];
  const char *nl = memchr(p, '\n', (size_t)(f->text + f->len - p));
  *len = nl ? (size_t)(nl - p) : (size_t)(f->text + f->len - p);
  return p;
}

//
// Reporting
//

// Counts the diagnostic and decides whether it is shown. The error past
// max_errors prints the one "too many errors" line and sets `stop`; from then
// on nothing is shown. Notes follow the fate of the error or warning before.
static bool diag_admit(Diag *d, DiagLevel lvl) {
  if (lvl == DIAG_NOTE)
    return d->last_shown;
  if (lvl == DIAG_ERROR)
    d->errors++;
  else
    d->warnings++;
  if (lvl == DIAG_ERROR && !d->stop && d->max_errors > 0 && d->errors > d->max_errors) {
    fprintf(d->out, "anec: fatal: too many errors (%d), stopping\n", d->max_errors);
    d->stop = true;
  }
  d->last_shown = !d->stop;
  return d->last_shown;
}

static void print_header(Diag *d, const SrcFile *f, SrcLoc loc, DiagLevel lvl) {
  if (!f)
    fputs("anec", d->out);
  else if (loc.first_line <= 0)
    fputs(f->name, d->out);
  else if (loc.first_column <= 0)
    fprintf(d->out, "%s:%d", f->name, loc.first_line);
  else
    fprintf(d->out, "%s:%d:%d", f->name, loc.first_line, loc.first_column);
  fprintf(d->out, ": %s: ", level_names[lvl]);
}

void diag_report(Diag *d, DiagLevel lvl, SrcLoc loc, const char *fmt, va_list ap) {
  if (!diag_admit(d, lvl))
    return;
  SrcFile *f = loc.file >= 0 && loc.file < d->nfiles ? &d->files[loc.file] : NULL;
  print_header(d, f, loc, lvl);
  vfprintf(d->out, fmt, ap);
  fputc('\n', d->out);
  size_t n;
  const char *line = f && loc.first_column > 0 ? file_line(f, loc.first_line, &n) : NULL;
  if (line)
    srcmsg_quote(d->out, line, n, (SrcSpan){loc.first_line, loc.first_column, loc.last_line,
                                            loc.last_column});
}

void diag_error(Diag *d, SrcLoc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_report(d, DIAG_ERROR, loc, fmt, ap);
  va_end(ap);
}

void diag_warning(Diag *d, SrcLoc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_report(d, DIAG_WARNING, loc, fmt, ap);
  va_end(ap);
}

void diag_note(Diag *d, SrcLoc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_report(d, DIAG_NOTE, loc, fmt, ap);
  va_end(ap);
}

//
// Suggestions
//

// Levenshtein distance of a and b, or `cap` if it is at least `cap`.
static size_t edit_distance(const char *a, const char *b, size_t cap) {
  size_t m = strlen(a), n = strlen(b);
  if ((m > n ? m - n : n - m) >= cap)
    return cap;
  size_t *row = malloc((n + 1) * sizeof(size_t));
  if (!row)
    return cap;
  for (size_t j = 0; j <= n; j++)
    row[j] = j;
  for (size_t i = 1; i <= m; i++) {
    size_t diag = row[0]; // row[i-1][j-1]
    row[0] = i;
    for (size_t j = 1; j <= n; j++) {
      size_t up = row[j];
      size_t best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best)
        best = up + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  size_t dist = row[n];
  free(row);
  return dist < cap ? dist : cap;
}

// Close means at most max(1, len/3) edits away; ties go to the earlier one.
const char *diag_suggest(const char *name, const char *const *cands, int n) {
  size_t limit = strlen(name) / 3 > 1 ? strlen(name) / 3 : 1;
  size_t best_dist = limit + 1;
  const char *best = NULL;
  for (int i = 0; i < n; i++) {
    if (!cands[i] || strcmp(cands[i], name) == 0)
      continue;
    size_t dist = edit_distance(name, cands[i], best_dist);
    if (dist < best_dist) {
      best_dist = dist;
      best = cands[i];
    }
  }
  return best;
}
