// golden.c — the golden-test runner: runs anec on each case of one .test file
// in a fresh temporary directory and compares its exit code, stderr and
// stdout with what the case expects.
//
//   usage: golden ANEC FILE.test [CASE...]    (CASE: run only those cases)
//
// A .test file holds many cases. Text before the first case is a comment.
//
//   #### case unknown_name          starts a case; names are unique in a file
//   args: check %f -D dim=4         split on blanks; %f = the first input's name
//   exit: 1                         expected exit code (default 0)
//   # a comment                     (blank lines are fine here too)
//   --- input m.anet                a file written into the case's directory
//   model m { dim = 8 }
//   x = foo
//   --- stderr                      expected stderr; absent means empty
//   m.anet:2:5: error: unknown name 'foo'
//       2 | x = foo
//         |     ^~~
//   --- stdout                      expected stdout; absent means empty
//
// A section's content is every line up to the next line that starts with
// `--- ` or `#### `, newlines included: no blank line between cases, or it
// belongs to the content. A marker may end in a modifier:
//   `(no newline)`  drop the content's final newline (a file without one);
//   `(hex)`         the content is hex bytes, blanks between them ignored and
//                   `#` starting a comment to the end of the line: for NUL
//                   bytes, invalid UTF-8 and lines that look like markers.
// anec runs with the case's directory as cwd, stdin from /dev/null, and a
// time limit (60 s, or $ANEC_GOLDEN_TIMEOUT); a hang or a death by signal
// always fails. Exit status: 0 all passed, 1 some failed, 2 a malformed file.
//
// ANEC_GOLDEN_UPDATE=1 rewrites FILE.test with the outputs anec gave (exit,
// stderr, stdout) instead of comparing: review the change with git diff.
// ANEC_GOLDEN_KEEP=1 keeps the temporary directories and prints their paths.
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { DIFF_CONTEXT = 3, DIFF_MAX_LINES = 200 };

//
// Growable byte buffers
//

typedef struct Buf {
  char *data;
  size_t len, cap;
} Buf;

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (!p) {
    fputs("golden: out of memory\n", stderr);
    exit(2);
  }
  return p;
}

static void buf_add(Buf *b, const void *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    b->cap = b->len + n + 1 > 2 * b->cap ? b->len + n + 1 : 2 * b->cap;
    b->data = xrealloc(b->data, b->cap);
  }
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static void buf_puts(Buf *b, const char *s) {
  buf_add(b, s, strlen(s));
}

static bool buf_eq(const Buf *a, const Buf *b) {
  return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static char *str_dup(const char *s, size_t n) {
  char *p = xrealloc(NULL, n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

//
// The .test file
//

typedef enum { SEC_INPUT, SEC_STDERR, SEC_STDOUT } SecKind;

typedef struct Section {
  SecKind kind;
  char *name;      // SEC_INPUT: the file to write
  Buf body;        // the content, decoded
  const char *raw; // the marker line through the end of the content, as written
  size_t rawlen;
} Section;

typedef struct Case {
  char *name;
  int line;        // of its `#### case` line
  const char *raw; // the whole case as written; raw[0..headlen) is the
  size_t rawlen;   // `#### case` line and the header lines
  size_t headlen;
  char *args;
  int exit_code;
  Section *secs;
  int nsecs;
  bool selected;
} Case;

typedef struct TestFile {
  const char *path;
  char *text;
  size_t len;
  size_t prelen;   // the comment before the first case
  Case *cases;
  int ncases;
} TestFile;

// Reading position in the file, one line at a time.
typedef struct Parser {
  TestFile *tf;
  size_t off;
  int line;
} Parser;

static bool parse_error(Parser *p, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s:%d: ", p->tf->path, p->line);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return false;
}

static bool parser_done(const Parser *p) {
  return p->off >= p->tf->len;
}

// The current line: a pointer to it and its length without the newline.
static const char *parser_peek(const Parser *p, size_t *n) {
  const char *s = p->tf->text + p->off;
  const char *nl = memchr(s, '\n', p->tf->len - p->off);
  *n = nl ? (size_t)(nl - s) : p->tf->len - p->off;
  return s;
}

static void parser_next(Parser *p) {
  size_t n;
  parser_peek(p, &n);
  p->off += n + (p->off + n < p->tf->len);
  p->line++;
}

static bool starts(const char *s, size_t n, const char *prefix) {
  size_t k = strlen(prefix);
  return n >= k && memcmp(s, prefix, k) == 0;
}

// Whether the current line starts with `prefix`.
static bool parser_at(const Parser *p, const char *prefix) {
  size_t n;
  const char *s = parser_peek(p, &n);
  return !parser_done(p) && starts(s, n, prefix);
}

static bool at_marker(const Parser *p) {
  return parser_at(p, "--- ") || parser_at(p, "#### ");
}

// s[0..n) without leading and trailing blanks (and a CR), as a new string.
static char *trimmed(const char *s, size_t n) {
  while (n && (*s == ' ' || *s == '\t'))
    s++, n--;
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
    n--;
  return str_dup(s, n);
}

static bool parse_header_line(Parser *p, Case *c) {
  size_t n;
  const char *s = parser_peek(p, &n);
  char *v = trimmed(s, n);
  bool ok = true;
  if (starts(s, n, "args:")) {
    free(c->args);
    c->args = trimmed(s + 5, n - 5);
  } else if (starts(s, n, "exit:")) {
    char *rest = trimmed(s + 5, n - 5), *end;
    long code = strtol(rest, &end, 10);
    ok = *rest && !*end && code >= 0 && code <= 255;
    c->exit_code = (int)code;
    free(rest);
    if (!ok)
      parse_error(p, "exit: wants a number from 0 to 255");
  } else if (*v && *v != '#') {
    ok = parse_error(p, "expected 'args:', 'exit:', a '# comment' or a '--- ' section");
  }
  free(v);
  parser_next(p);
  return ok;
}

static int hex_digit(char ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

// Decodes a (hex) section's content into out.
static bool hex_decode(Parser *p, const char *s, size_t n, Buf *out) {
  int hi = -1;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '#') {
      while (i < n && s[i] != '\n')
        i++;
    } else if (hex_digit(s[i]) >= 0 && hi < 0) {
      hi = hex_digit(s[i]);
    } else if (hex_digit(s[i]) >= 0) {
      char byte = (char)(hi << 4 | hex_digit(s[i]));
      buf_add(out, &byte, 1);
      hi = -1;
    } else if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') {
      return parse_error(p, "bad character '%c' in a (hex) section", s[i]);
    }
  }
  return hi < 0 || parse_error(p, "odd number of hex digits in a (hex) section");
}

// An input file name must stay inside the case's directory.
static bool name_ok(const char *name) {
  if (!*name || name[0] == '/' || strpbrk(name, " \t"))
    return false;
  for (const char *s = name; s; s = strchr(s, '/')) {
    if (*s == '/')
      s++;
    if (strncmp(s, "..", 2) == 0 && (s[2] == '/' || s[2] == '\0'))
      return false;
  }
  return true;
}

// Parses `--- KIND [NAME] [(MODIFIER)]` into sec; *mod gets the modifier.
static bool parse_marker(Parser *p, Section *sec, char **mod) {
  size_t n;
  const char *s = parser_peek(p, &n);
  char *m = trimmed(s + 4, n - 4);
  char *paren = strstr(m, " (");
  *mod = paren && m[strlen(m) - 1] == ')' ? trimmed(paren + 2, strlen(paren) - 3) : NULL;
  if (*mod)
    *paren = '\0';
  bool ok = true;
  if (strcmp(m, "stderr") == 0 || strcmp(m, "stdout") == 0)
    sec->kind = strcmp(m, "stderr") == 0 ? SEC_STDERR : SEC_STDOUT;
  else if (starts(m, strlen(m), "input ") && name_ok(m + 6))
    sec->name = str_dup(m + 6, strlen(m + 6));
  else
    ok = parse_error(p, "expected '--- input NAME', '--- stderr' or '--- stdout'");
  if (ok && *mod && strcmp(*mod, "no newline") != 0 && strcmp(*mod, "hex") != 0)
    ok = parse_error(p, "unknown modifier '(%s)'", *mod);
  free(m);
  return ok;
}

static bool parse_section(Parser *p, Section *sec) {
  char *mod = NULL;
  int marker_line = p->line;
  sec->raw = p->tf->text + p->off;
  bool ok = parse_marker(p, sec, &mod);
  parser_next(p);
  size_t from = p->off;
  while (!parser_done(p) && !at_marker(p))
    parser_next(p);
  const char *body = p->tf->text + from;
  size_t n = p->off - from;
  sec->rawlen = (size_t)(p->tf->text + p->off - sec->raw);
  if (ok && mod && strcmp(mod, "hex") == 0) {
    Parser at = {p->tf, from, marker_line + 1};
    ok = hex_decode(&at, body, n, &sec->body);
  } else {
    if (mod && n && body[n - 1] == '\n')
      n--; // (no newline)
    buf_add(&sec->body, body, n);
  }
  free(mod);
  return ok;
}

static const char *kind_name(SecKind k) {
  return k == SEC_INPUT ? "input" : k == SEC_STDERR ? "stderr" : "stdout";
}

// A section may not repeat: one stderr, one stdout, one input per name.
static bool section_new(Parser *p, Case *c, const Section *sec) {
  for (int i = 0; i < c->nsecs; i++) {
    const Section *o = &c->secs[i];
    if (o->kind == sec->kind && (sec->kind != SEC_INPUT || strcmp(o->name, sec->name) == 0))
      return parse_error(p, "a second '%s%s%s' section", kind_name(sec->kind),
                         sec->name ? " " : "", sec->name ? sec->name : "");
  }
  return true;
}

static bool parse_sections(Parser *p, Case *c) {
  while (parser_at(p, "--- ")) {
    Section sec = {0};
    Parser at = {p->tf, 0, p->line};
    bool ok = parse_section(p, &sec) && section_new(&at, c, &sec);
    c->secs = xrealloc(c->secs, sizeof(Section) * (size_t)(c->nsecs + 1));
    c->secs[c->nsecs++] = sec; // kept even when bad, for case_free
    if (!ok)
      return false;
  }
  return true;
}

static const Section *case_section(const Case *c, SecKind kind) {
  for (int i = 0; i < c->nsecs; i++)
    if (c->secs[i].kind == kind)
      return &c->secs[i];
  return NULL;
}

static bool case_name_new(Parser *p, const char *name) {
  for (int i = 0; i < p->tf->ncases; i++)
    if (strcmp(p->tf->cases[i].name, name) == 0)
      return parse_error(p, "a second case named '%s'", name);
  return true;
}

static bool parse_case(Parser *p, Case *c) {
  size_t n;
  const char *s = parser_peek(p, &n);
  if (!starts(s, n, "#### case "))
    return parse_error(p, "expected '#### case NAME'");
  c->name = trimmed(s + 10, n - 10);
  c->line = p->line;
  c->raw = s;
  c->args = str_dup("", 0);
  if (!*c->name || strpbrk(c->name, " \t"))
    return parse_error(p, "a case name is one word");
  if (!case_name_new(p, c->name))
    return false;
  parser_next(p);
  while (!parser_done(p) && !at_marker(p))
    if (!parse_header_line(p, c))
      return false;
  c->headlen = (size_t)(p->tf->text + p->off - c->raw);
  if (!parse_sections(p, c))
    return false;
  c->rawlen = (size_t)(p->tf->text + p->off - c->raw);
  Parser at = {p->tf, 0, c->line};
  if (strstr(c->args, "%f") && !case_section(c, SEC_INPUT))
    return parse_error(&at, "case '%s' uses %%f but has no input", c->name);
  return true;
}

static void case_free(Case *c) {
  for (int j = 0; j < c->nsecs; j++) {
    free(c->secs[j].name);
    free(c->secs[j].body.data);
  }
  free(c->secs);
  free(c->name);
  free(c->args);
}

static bool testfile_parse(TestFile *tf) {
  Parser p = {tf, 0, 1};
  while (!parser_done(&p) && !parser_at(&p, "#### "))
    parser_next(&p);
  tf->prelen = p.off;
  while (!parser_done(&p)) {
    Case c = {0};
    if (!parse_case(&p, &c)) {
      case_free(&c);
      return false;
    }
    c.selected = true;
    tf->cases = xrealloc(tf->cases, sizeof(Case) * (size_t)(tf->ncases + 1));
    tf->cases[tf->ncases++] = c;
  }
  if (tf->ncases == 0)
    return parse_error(&p, "no '#### case NAME' in the file");
  return true;
}

static bool file_read(const char *path, Buf *b) {
  FILE *fp = fopen(path, "rb");
  if (!fp)
    return false;
  char chunk[1 << 16];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
    buf_add(b, chunk, n);
  bool ok = !ferror(fp);
  fclose(fp);
  buf_add(b, "", 0);
  return ok;
}

static void testfile_free(TestFile *tf) {
  for (int i = 0; i < tf->ncases; i++)
    case_free(&tf->cases[i]);
  free(tf->cases);
  free(tf->text);
}

//
// Running one case
//

static bool env_flag(const char *name) {
  const char *v = getenv(name);
  return v && *v && strcmp(v, "0") != 0;
}

static double env_timeout(void) {
  const char *v = getenv("ANEC_GOLDEN_TIMEOUT");
  double t = v ? atof(v) : 0;
  return t > 0 ? t : 60;
}

typedef struct Run {
  Buf out, err;
  int status;   // from waitpid
  bool hang;    // killed at the time limit
  char *dir;    // the temporary directory, while it exists
} Run;

static bool write_all(const char *path, const Buf *b) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    return false;
  size_t done = 0;
  while (done < b->len) {
    ssize_t n = write(fd, b->data + done, b->len - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      break;
    done += (size_t)n;
  }
  return close(fd) == 0 && done == b->len;
}

// Writes an input section to dir/name, making the directories on the way.
static bool input_write(const char *dir, const Section *sec) {
  Buf path = {0};
  buf_puts(&path, dir);
  buf_puts(&path, "/");
  size_t base = path.len;
  buf_puts(&path, sec->name);
  for (char *s = path.data + base; (s = strchr(s, '/')); *s++ = '/') {
    *s = '\0';
    if (mkdir(path.data, 0755) != 0 && errno != EEXIST)
      break;
  }
  bool ok = write_all(path.data, &sec->body);
  if (!ok)
    fprintf(stderr, "golden: cannot write %s: %s\n", path.data, strerror(errno));
  free(path.data);
  return ok;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  remove(path);
  return 0;
}

static char *tempdir_make(void) {
  const char *tmp = getenv("TMPDIR");
  Buf b = {0};
  buf_puts(&b, tmp && *tmp ? tmp : "/tmp");
  buf_puts(&b, "/anec-golden-XXXXXX");
  if (!mkdtemp(b.data)) {
    fprintf(stderr, "golden: cannot make a directory %s: %s\n", b.data, strerror(errno));
    free(b.data);
    return NULL;
  }
  return b.data;
}

// The argument vector: args split on blanks, %f replaced by the first input.
static char **argv_build(const Case *c) {
  const Section *in = case_section(c, SEC_INPUT);
  char **argv = xrealloc(NULL, sizeof(char *) * (strlen(c->args) / 2 + 3));
  int argc = 0;
  argv[argc++] = str_dup("anec", 4);
  for (const char *s = c->args; *s;) {
    size_t n = strcspn(s, " \t");
    Buf arg = {0};
    for (size_t i = 0; i < n; i++) {
      if (s[i] == '%' && i + 1 < n && s[i + 1] == 'f')
        buf_puts(&arg, in->name), i++;
      else
        buf_add(&arg, &s[i], 1);
    }
    if (n)
      argv[argc++] = arg.data;
    s += n + strspn(s + n, " \t");
  }
  argv[argc] = NULL;
  return argv;
}

static void argv_free(char **argv) {
  for (char **a = argv; *a; a++)
    free(*a);
  free(argv);
}

// Runs in the child: cwd = dir, stdin /dev/null, stdout/stderr to the pipes.
static void child_exec(const char *anec, char **argv, const char *dir, int out, int err) {
  setpgid(0, 0);
  int null = open("/dev/null", O_RDONLY);
  if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
    _exit(126);
  close(null);
  if (chdir(dir) != 0) {
    fprintf(stderr, "golden: cannot enter %s: %s\n", dir, strerror(errno));
    _exit(126);
  }
  close(out);
  close(err);
  execv(anec, argv);
  fprintf(stderr, "golden: cannot run %s: %s\n", anec, strerror(errno));
  _exit(127);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// Reads the child's stdout and stderr until both close or time runs out.
static void capture(Run *r, int out, int err, double deadline) {
  struct pollfd fds[2] = {{.fd = out, .events = POLLIN}, {.fd = err, .events = POLLIN}};
  Buf *dst[2] = {&r->out, &r->err};
  char chunk[1 << 16];
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    double left = deadline - now();
    int k = left > 0 ? poll(fds, 2, (int)(left * 1000) + 1) : 0;
    if (k == 0) {
      r->hang = true;
      break;
    }
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0)
      break;
    for (int i = 0; i < 2; i++) {
      if (fds[i].fd < 0 || !fds[i].revents)
        continue;
      ssize_t n = read(fds[i].fd, chunk, sizeof chunk);
      if (n > 0)
        buf_add(dst[i], chunk, (size_t)n);
      else if (n == 0 || errno != EINTR)
        fds[i].fd = -1;
    }
  }
}

// Waits for the child until the deadline; past it, kills its process group.
static void reap(Run *r, pid_t pid, double deadline) {
  while (!r->hang) {
    pid_t w = waitpid(pid, &r->status, WNOHANG);
    if (w == pid || (w < 0 && errno != EINTR))
      return;
    if (now() > deadline)
      r->hang = true;
    else
      nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
  }
  kill(-pid, SIGKILL);
  kill(pid, SIGKILL);
  while (waitpid(pid, &r->status, 0) < 0 && errno == EINTR)
    ;
}

static bool spawn(Run *r, const char *anec, char **argv, double timeout) {
  int out[2], err[2];
  if (pipe(out) != 0 || pipe(err) != 0) {
    perror("golden: pipe");
    return false;
  }
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    perror("golden: fork");
    return false;
  }
  if (pid == 0) {
    close(out[0]);
    close(err[0]);
    child_exec(anec, argv, r->dir, out[1], err[1]);
  }
  setpgid(pid, pid);
  close(out[1]);
  close(err[1]);
  double deadline = now() + timeout;
  capture(r, out[0], err[0], deadline);
  reap(r, pid, deadline);
  close(out[0]);
  close(err[0]);
  return true;
}

static bool case_run(const Case *c, Run *r, const char *anec, double timeout) {
  r->dir = tempdir_make();
  if (!r->dir)
    return false;
  for (int i = 0; i < c->nsecs; i++)
    if (c->secs[i].kind == SEC_INPUT && !input_write(r->dir, &c->secs[i]))
      return false;
  char **argv = argv_build(c);
  bool ok = spawn(r, anec, argv, timeout);
  argv_free(argv);
  return ok;
}

// Removes the case's directory, or tells where it is kept.
static void run_clean(Run *r, bool keep) {
  if (r->dir && keep)
    printf("  kept %s\n", r->dir);
  else if (r->dir)
    nftw(r->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(r->dir);
  r->dir = NULL;
}

//
// Comparing: a line diff of expected and actual output
//

typedef struct Lines {
  const char **at;
  size_t *len;     // with the '\n', if the line has one
  int n;
} Lines;

static Lines lines_split(const Buf *b) {
  Lines l = {0};
  size_t cap = 0;
  for (size_t off = 0; off < b->len; l.n++) {
    const char *nl = memchr(b->data + off, '\n', b->len - off);
    size_t n = nl ? (size_t)(nl - (b->data + off)) + 1 : b->len - off;
    if ((size_t)l.n == cap) {
      cap = cap ? 2 * cap : 64;
      l.at = xrealloc(l.at, sizeof(char *) * cap);
      l.len = xrealloc(l.len, sizeof(size_t) * cap);
    }
    l.at[l.n] = b->data + off;
    l.len[l.n] = n;
    off += n;
  }
  return l;
}

static bool line_eq(const Lines *a, int i, const Lines *b, int j) {
  return a->len[i] == b->len[j] && memcmp(a->at[i], b->at[j], a->len[i]) == 0;
}

// Prints one diff line, unless DIFF_MAX_LINES have been printed already.
static void diff_line(char mark, const Lines *l, int i, int *printed) {
  if ((*printed)++ >= DIFF_MAX_LINES)
    return;
  printf("  %c%.*s", mark, (int)l->len[i], l->at[i]);
  if (l->len[i] == 0 || l->at[i][l->len[i] - 1] != '\n')
    printf("\n  \\ No newline at end of file\n");
}

// The changed middle a[i0..i1) against b[j0..j1): a longest common
// subsequence when it is small enough, else all of a then all of b.
static void diff_middle(const Lines *a, int i0, int i1, const Lines *b, int j0, int j1,
                        int *printed) {
  size_t w = (size_t)(j1 - j0 + 1), cells = (size_t)(i1 - i0 + 1) * w;
  unsigned *lcs = cells <= 4000000 ? calloc(cells, sizeof(unsigned)) : NULL;
  for (int i = i1 - 1; lcs && i >= i0; i--)
    for (int j = j1 - 1; j >= j0; j--) {
      unsigned *c = &lcs[(size_t)(i - i0) * w + (size_t)(j - j0)];
      unsigned down = c[w], right = c[1];
      *c = line_eq(a, i, b, j) ? c[w + 1] + 1 : down > right ? down : right;
    }
  int i = i0, j = j0;
  while (lcs && i < i1 && j < j1) {
    unsigned *c = &lcs[(size_t)(i - i0) * w + (size_t)(j - j0)];
    if (line_eq(a, i, b, j))
      diff_line(' ', a, i++, printed), j++;
    else if (c[w] >= c[1])
      diff_line('-', a, i++, printed);
    else
      diff_line('+', b, j++, printed);
  }
  while (i < i1)
    diff_line('-', a, i++, printed);
  while (j < j1)
    diff_line('+', b, j++, printed);
  free(lcs);
}

static void diff_print(const char *what, const Buf *want, const Buf *got) {
  Lines a = lines_split(want), b = lines_split(got);
  int pre = 0, suf = 0, printed = 0;
  while (pre < a.n && pre < b.n && line_eq(&a, pre, &b, pre))
    pre++;
  while (suf < a.n - pre && suf < b.n - pre && line_eq(&a, a.n - 1 - suf, &b, b.n - 1 - suf))
    suf++;
  int from = pre > DIFF_CONTEXT ? pre - DIFF_CONTEXT : 0;
  int tail = suf < DIFF_CONTEXT ? suf : DIFF_CONTEXT;
  printf("  %s differs:\n  --- expected\n  +++ actual\n", what);
  printf("  @@ -%d,%d +%d,%d @@\n", from + 1, a.n - suf + tail - from, from + 1,
         b.n - suf + tail - from);
  for (int i = from; i < pre; i++)
    diff_line(' ', &a, i, &printed);
  diff_middle(&a, pre, a.n - suf, &b, pre, b.n - suf, &printed);
  for (int i = a.n - suf; i < a.n - suf + tail; i++)
    diff_line(' ', &a, i, &printed);
  if (printed > DIFF_MAX_LINES)
    printf("  ... %d more diff lines\n", printed - DIFF_MAX_LINES);
  free(a.at), free(a.len), free(b.at), free(b.len);
}

static const Buf *expected(const Case *c, SecKind kind) {
  static const Buf empty = {"", 0, 0};
  const Section *s = case_section(c, kind);
  return s ? &s->body : &empty;
}

static void fail_header(const Case *c, const char *path, bool *first) {
  if (*first)
    printf("FAIL %s (%s:%d)\n", c->name, path, c->line);
  *first = false;
}

// Compares a finished run with the case; prints what differs.
static bool case_check(const Case *c, const Run *r, const char *path) {
  bool ok = true;
  if (r->hang) {
    fail_header(c, path, &ok);
    printf("  hang: killed after %g s\n", env_timeout());
  } else if (WIFSIGNALED(r->status)) {
    fail_header(c, path, &ok);
    printf("  crash: signal %d (%s)\n", WTERMSIG(r->status), strsignal(WTERMSIG(r->status)));
  } else if (WEXITSTATUS(r->status) != c->exit_code) {
    fail_header(c, path, &ok);
    printf("  exit: expected %d, got %d\n", c->exit_code, WEXITSTATUS(r->status));
  }
  if (!buf_eq(expected(c, SEC_STDERR), &r->err)) {
    fail_header(c, path, &ok);
    diff_print("stderr", expected(c, SEC_STDERR), &r->err);
  }
  if (!buf_eq(expected(c, SEC_STDOUT), &r->out)) {
    fail_header(c, path, &ok);
    diff_print("stdout", expected(c, SEC_STDOUT), &r->out);
  }
  if (!ok)
    printf("  args: %s\n", c->args);
  return ok;
}

//
// ANEC_GOLDEN_UPDATE: writing the file back with the actual outputs
//

static bool looks_like_marker(const Buf *b) {
  for (size_t off = 0; off < b->len;) {
    const char *s = b->data + off;
    if (starts(s, b->len - off, "--- ") || starts(s, b->len - off, "#### "))
      return true;
    const char *nl = memchr(s, '\n', b->len - off);
    off = nl ? (size_t)(nl + 1 - b->data) : b->len;
  }
  return false;
}

// `--- what` and the content, in the plainest form that reads back the same.
static void section_write(Buf *o, const char *what, const Buf *body) {
  char hex[4];
  buf_puts(o, "--- ");
  buf_puts(o, what);
  if (looks_like_marker(body)) {
    buf_puts(o, " (hex)");
    for (size_t i = 0; i < body->len; i++) {
      snprintf(hex, sizeof hex, "%s%02x", i % 16 ? " " : "\n", (unsigned char)body->data[i]);
      buf_puts(o, hex);
    }
    buf_puts(o, "\n");
  } else if (body->len && body->data[body->len - 1] != '\n') {
    buf_puts(o, " (no newline)\n");
    buf_add(o, body->data, body->len);
    buf_puts(o, "\n");
  } else {
    buf_puts(o, "\n");
    buf_add(o, body->data, body->len);
  }
}

// The header as written, with the exit line set to `code`.
static void header_write(Buf *o, const Case *c, int code) {
  char line[32];
  snprintf(line, sizeof line, "exit: %d\n", code);
  bool done = code == 0;
  for (size_t off = 0; off < c->headlen;) {
    const char *s = c->raw + off;
    const char *nl = memchr(s, '\n', c->headlen - off);
    size_t n = nl ? (size_t)(nl + 1 - s) : c->headlen - off;
    if (off > 0 && starts(s, n, "exit:")) {
      buf_puts(o, line);
      done = true;
    } else {
      buf_add(o, s, n);
      if (!nl)
        buf_puts(o, "\n");
    }
    off += n;
  }
  if (!done)
    buf_puts(o, line);
}

static void case_write(Buf *o, const Case *c, const Run *r) {
  header_write(o, c, WEXITSTATUS(r->status));
  for (int i = 0; i < c->nsecs; i++) {
    const Section *s = &c->secs[i];
    if (s->kind != SEC_INPUT)
      continue;
    if (s->rawlen && s->raw[s->rawlen - 1] == '\n') {
      buf_add(o, s->raw, s->rawlen);
    } else {
      char *what = xrealloc(NULL, strlen(s->name) + 7);
      sprintf(what, "input %s", s->name);
      section_write(o, what, &s->body);
      free(what);
    }
  }
  if (r->err.len)
    section_write(o, "stderr", &r->err);
  if (r->out.len)
    section_write(o, "stdout", &r->out);
}

// Rewrites the file; a case that was not run, hung or crashed stays as it was.
static bool testfile_update(const TestFile *tf, const Run *runs, const bool *usable) {
  Buf o = {0}, path = {0};
  buf_add(&o, tf->text, tf->prelen);
  for (int i = 0; i < tf->ncases; i++) {
    const Case *c = &tf->cases[i];
    if (usable[i])
      case_write(&o, c, &runs[i]);
    else
      buf_add(&o, c->raw, c->rawlen);
  }
  buf_puts(&path, tf->path);
  buf_puts(&path, ".tmp");
  bool ok = write_all(path.data, &o) && rename(path.data, tf->path) == 0;
  if (ok)
    printf("updated %s\n", tf->path);
  else
    fprintf(stderr, "golden: cannot write %s: %s\n", tf->path, strerror(errno));
  free(o.data);
  free(path.data);
  return ok;
}

//
// main
//

// Marks the cases named on the command line; false if a name matches none.
static bool cases_select(TestFile *tf, int n, char **names) {
  for (int i = 0; n > 0 && i < tf->ncases; i++)
    tf->cases[i].selected = false;
  for (int k = 0; k < n; k++) {
    bool found = false;
    for (int i = 0; i < tf->ncases; i++)
      if (strcmp(tf->cases[i].name, names[k]) == 0)
        found = tf->cases[i].selected = true;
    if (!found) {
      fprintf(stderr, "golden: %s has no case '%s'\n", tf->path, names[k]);
      return false;
    }
  }
  return true;
}

// Runs case i; in update mode only a hang or crash fails it.
static bool case_do(TestFile *tf, int i, const char *anec, Run *r, bool *usable) {
  const Case *c = &tf->cases[i];
  bool ran = case_run(c, r, anec, env_timeout());
  *usable = ran && !r->hang && !WIFSIGNALED(r->status);
  if (ran && !env_flag("ANEC_GOLDEN_UPDATE"))
    return case_check(c, r, tf->path);
  if (!*usable)
    printf("FAIL %s (%s:%d): %s\n", c->name, tf->path, c->line,
           !ran ? "could not run" : r->hang ? "hang" : "crash");
  return *usable;
}

// Runs the selected cases; returns the number that failed.
static int cases_run(TestFile *tf, const char *anec, Run *runs, bool *usable) {
  int passed = 0, failed = 0;
  for (int i = 0; i < tf->ncases; i++) {
    if (!tf->cases[i].selected)
      continue;
    if (case_do(tf, i, anec, &runs[i], &usable[i]))
      passed++;
    else
      failed++;
    run_clean(&runs[i], env_flag("ANEC_GOLDEN_KEEP"));
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: golden ANEC FILE.test [CASE...]\n");
    return 2;
  }
  char *anec = realpath(argv[1], NULL);
  Buf text = {0};
  TestFile tf = {.path = argv[2]};
  if (!anec || !file_read(argv[2], &text)) {
    fprintf(stderr, "golden: cannot read %s: %s\n", anec ? argv[2] : argv[1], strerror(errno));
    free(anec);
    free(text.data);
    return 2;
  }
  tf.text = text.data;
  tf.len = text.len;
  if (!testfile_parse(&tf) || !cases_select(&tf, argc - 3, argv + 3)) {
    testfile_free(&tf);
    free(anec);
    return 2;
  }
  Run *runs = calloc((size_t)tf.ncases, sizeof(Run));
  bool *usable = calloc((size_t)tf.ncases, sizeof(bool));
  int failed = cases_run(&tf, anec, runs, usable);
  if (env_flag("ANEC_GOLDEN_UPDATE") && !testfile_update(&tf, runs, usable))
    failed++;
  testfile_free(&tf);
  for (int i = 0; i < tf.ncases; i++)
    free(runs[i].out.data), free(runs[i].err.data);
  free(runs);
  free(usable);
  free(anec);
  return failed ? 1 : 0;
}
