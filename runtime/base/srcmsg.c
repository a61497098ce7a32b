// srcmsg.c — located messages shared by the compiler's diagnostics and the
// runtime's readers: the GCC-style header, the quoted source line (made safe
// to print) and the caret with ~~~ under the range; UTF-8 decoding; RtDiag.
#include "base.h"

#include <string.h>

enum { LINE_CAP = 200 }; // longest part of a source line shown, in bytes

//
// UTF-8
//

// The length of a sequence as its first byte tells it; 0 for a byte that
// cannot start one (a continuation byte, or 0xF8 and above).
static int utf8_length(unsigned char lead) {
  if (lead < 0x80)
    return 1;
  if (lead < 0xC0)
    return 0;
  return lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : lead < 0xF8 ? 4 : 0;
}

// Overlongs, surrogates, code points past U+10FFFF, stray continuation
// bytes and sequences cut short all give 0.
int utf8_decode(const char *s, size_t n, uint32_t *cp) {
  static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
  const unsigned char *p = (const unsigned char *)s;
  int len = n ? utf8_length(p[0]) : 0;
  if (len == 0 || (size_t)len > n)
    return 0;
  uint32_t c = len == 1 ? p[0] : p[0] & (0x7F >> len);
  for (int i = 1; i < len; i++) {
    if ((p[i] & 0xC0) != 0x80)
      return 0;
    c = c << 6 | (p[i] & 0x3F);
  }
  if (c < min[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
    return 0;
  if (cp)
    *cp = c;
  return len;
}

// A source line as printed: printable bytes, and the display column of each
// source byte so the caret lines up under multi-byte characters.
typedef struct Shown {
  char text[LINE_CAP + 8];
  int len;                // bytes in text
  int col[LINE_CAP + 1];  // display column (0-based) of source byte i; col[n]: the end
  int n;                  // source bytes shown
  bool cut;               // the line was longer than LINE_CAP bytes
} Shown;

// Whether a well-formed character would not print as itself: C0/C1 controls,
// DEL, and the bidirectional overrides that reorder what a terminal shows.
static bool char_hidden(uint32_t c) {
  return c < 0x20 || (c >= 0x7F && c < 0xA0) || (c >= 0x202A && c <= 0x202E) ||
         (c >= 0x2066 && c <= 0x2069);
}

// Appends the character at p[0..k) (k == 0: an invalid byte) to s.
static void shown_put(Shown *s, const char *p, int k, uint32_t c) {
  if (k == 0 || (char_hidden(c) && c != '\t')) {
    s->text[s->len++] = '?';
  } else if (c == '\t') {
    s->text[s->len++] = ' ';
  } else {
    memcpy(s->text + s->len, p, (size_t)k);
    s->len += k;
  }
}

static void shown_build(Shown *s, const char *p, size_t n) {
  s->cut = n > LINE_CAP;
  if (s->cut) {
    n = LINE_CAP;
    while (n > LINE_CAP - 3 && ((unsigned char)p[n] & 0xC0) == 0x80)
      n--; // do not split a character
  }
  int width = 0; // display columns so far
  s->len = s->n = 0;
  while ((size_t)s->n < n) {
    uint32_t c = 0;
    int k = utf8_decode(p + s->n, n - (size_t)s->n, &c);
    shown_put(s, p + s->n, k, c);
    for (int j = 0; j < (k ? k : 1); j++)
      s->col[s->n++] = width;
    width++;
  }
  s->col[s->n] = width;
  if (s->cut) {
    memcpy(s->text + s->len, " ...", 4);
    s->len += 4;
  }
}

// Display column of source byte i (0-based) of the line. Bytes past what is
// shown map just past the end of the line, or onto the " ..." of a cut line.
static int shown_col(const Shown *s, long i) {
  if (i < s->n)
    return s->col[i < 0 ? 0 : i];
  return s->col[s->n] + (s->cut ? 1 : 0);
}

static int count_digits(int v) {
  int n = 1;
  while (v >= 10) {
    v /= 10;
    n++;
  }
  return n;
}

// The quoted line and the caret line under it, in GCC's layout:
//    12 |   q = linear(dimm, wq)
//       |              ^~~~
// A range that goes on to later lines is underlined to the end of its first.
void srcmsg_quote(FILE *out, const char *p, size_t n, SrcSpan span) {
  if (n && p[n - 1] == '\r') // a CRLF file: do not show the CR
    n--;
  Shown s;
  shown_build(&s, p, n);
  long first = (long)span.first_column - 1, last = first;
  if (span.last_line == span.first_line && (long)span.last_column - 1 > first)
    last = span.last_column - 1;
  else if (span.last_line > span.first_line && (long)n - 1 > first)
    last = (long)n - 1;
  int from = shown_col(&s, first), to = shown_col(&s, last);
  int w = count_digits(span.first_line) < 4 ? 4 : count_digits(span.first_line);
  fprintf(out, " %*d | %.*s\n", w, span.first_line, s.len, s.text);
  fprintf(out, " %*s | %*s^", w, "", from, "");
  for (int i = from; i < to; i++)
    fputc('~', out);
  fputc('\n', out);
}

// Line `line` (1-based) of text[0..len) without its '\n', or NULL past the end.
static const char *text_line(const char *text, size_t len, int line, size_t *n) {
  const char *p = text, *end = text + len;
  for (int l = 1; l < line; l++) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl)
      return NULL;
    p = nl + 1;
  }
  if (p == end && line > 1)
    return NULL; // the empty line after a final newline
  const char *nl = memchr(p, '\n', (size_t)(end - p));
  *n = nl ? (size_t)(nl - p) : (size_t)(end - p);
  return p;
}

void srcmsg_print(FILE *out, const char *file, const char *text, size_t len, SrcSpan span,
                  const char *level, const char *msg) {
  if (!file)
    fprintf(out, "anec: %s: %s\n", level, msg);
  else if (span.first_line <= 0)
    fprintf(out, "%s: %s: %s\n", file, level, msg);
  else if (span.first_column <= 0)
    fprintf(out, "%s:%d: %s: %s\n", file, span.first_line, level, msg);
  else
    fprintf(out, "%s:%d:%d: %s: %s\n", file, span.first_line, span.first_column, level, msg);
  size_t n;
  const char *line = text && span.first_line > 0 && span.first_column > 0
                         ? text_line(text, len, span.first_line, &n)
                         : NULL;
  if (line)
    srcmsg_quote(out, line, n, span);
}

//
// RtDiag
//

static void rt_report(RtDiag *d, const char *level, const char *file, const char *text,
                      size_t len, SrcSpan span, const char *fmt, va_list ap) {
  int max = d->max_errors > 0 ? d->max_errors : 20;
  if (*level == 'e' && ++d->errors > max) {
    if (!d->stop && d->out)
      fprintf(d->out, "anec: fatal: too many errors (%d), stopping\n", max);
    d->stop = true;
  }
  if (d->stop || !d->out)
    return;
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  srcmsg_print(d->out, file, text, len, span, level, msg);
}

void rt_error(RtDiag *d, const char *file, const char *text, size_t len, SrcSpan span,
              const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  rt_report(d, "error", file, text, len, span, fmt, ap);
  va_end(ap);
}

void rt_warning(RtDiag *d, const char *file, const char *text, size_t len, SrcSpan span,
                const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  rt_report(d, "warning", file, text, len, span, fmt, ap);
  va_end(ap);
}

void rt_error_file(RtDiag *d, const char *file, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  rt_report(d, "error", file, NULL, 0, (SrcSpan){0, 0, 0, 0}, fmt, ap);
  va_end(ap);
}
