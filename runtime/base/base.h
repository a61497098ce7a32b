// base.h — the runtime's base: arena memory, a string map, located
// messages, whole files in and atomic files out, the thread pool and BLAS,
// byte helpers, fp16 and number formatting.
#ifndef ANERT_BASE_H
#define ANERT_BASE_H

#include "anert.h"

//
// arena.c — bump allocation: everything of one compilation or one loaded
// program lives in one arena and is freed at once.
//
typedef struct ArenaBlock ArenaBlock;
typedef struct Arena {
  ArenaBlock *head;
  size_t total; // bytes handed out, for reports
} Arena;

void *arena_alloc(Arena *a, size_t n); // zeroed, 16-byte aligned; aborts on OOM
void *arena_grow(Arena *a, void *old, size_t old_n, size_t new_n); // copy-grow
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...) ANERT_PRINTF(2, 3);
void arena_free(Arena *a);

//
// strmap.c — a string-keyed hash map in an arena (names to anything); keys
// are not copied. Lookups and inserts are O(1) on average.
//
typedef struct StrMapEntry {
  const char *key;
  void *value;
} StrMapEntry;
typedef struct StrMap {
  Arena *arena;
  StrMapEntry *slots;
  size_t cap, len;
} StrMap;

void strmap_init(StrMap *m, Arena *a);
void *strmap_get(const StrMap *m, const char *key);            // NULL if absent
void strmap_put(StrMap *m, const char *key, void *value);      // insert or replace

//
// srcmsg.c — one located message in GCC's format:
//   file:line:col: LEVEL: message
//      12 | the source line
//         |     ^~~~
// Columns are 1-based bytes; the range ends at (last_line, last_column),
// inclusive. text == NULL or line beyond the text: the header line only.
//
typedef struct SrcSpan {
  int first_line, first_column;
  int last_line, last_column;
} SrcSpan;

void srcmsg_print(FILE *out, const char *file, const char *text, size_t len, SrcSpan span,
                  const char *level, const char *msg);
// Just the quoted line p[0..n) (no '\n') and its caret line.
void srcmsg_quote(FILE *out, const char *p, size_t n, SrcSpan span);
// Length of the well-formed UTF-8 sequence at s[0..n) (1 to 4), 0 if invalid.
int utf8_decode(const char *s, size_t n, uint32_t *cp);

//
// RtDiag — where runtime readers report errors about their input files.
void rt_error(RtDiag *d, const char *file, const char *text, size_t len, SrcSpan span,
              const char *fmt, ...) ANERT_PRINTF(6, 7);
void rt_warning(RtDiag *d, const char *file, const char *text, size_t len, SrcSpan span,
                const char *fmt, ...) ANERT_PRINTF(6, 7);

// atomic.c — writes `path` through `fill` into a temp file next to it, then
// renames it over `path`: complete or absent, never half-written. Reports
// failures to `d` naming the file.
bool rt_write_atomic(const char *path, bool (*fill)(FILE *f, void *ctx), void *ctx, RtDiag *d);
// Every reader of a file opens it here: a regular file of at most max bytes,
// opened without blocking on a FIFO or a device (refused, as are
// directories: RT_ENOTREG), its size in *size. 0, an errno value, or RT_ENOTREG /
// RT_ETOOBIG; rt_open_strerror says which in words.
enum { RT_ENOTREG = -1, RT_ETOOBIG = -2 };
int rt_open_regular(const char *path, uint64_t max, FILE **f, uint64_t *size);
const char *rt_open_strerror(int err);
// The whole of a regular file of at most max bytes, malloc'd with a NUL after
// its n bytes; NULL (reported, naming the file) when it cannot be read.
unsigned char *rt_read_file_max(const char *path, uint64_t max, size_t *n, RtDiag *d);
// rt_read_file_max with RT_READ_MAX.
#define RT_READ_MAX ((uint64_t)16 << 30)
unsigned char *rt_read_file(const char *path, size_t *n, RtDiag *d);
// Creates directory dir and its missing parents (mkdir -p); 0, or the errno
// of the first failure (ENOTDIR when dir exists but is not a directory).
int rt_mkdirs(const char *dir);
// Swaps the entries a and b (both existing, on one file system) in one atomic
// step where the OS can (Linux: renameat2 RENAME_EXCHANGE): 0, or an errno;
// ENOSYS, EINVAL or ENOTSUP when this OS or file system cannot, and the
// caller falls back to two renames.
int rt_rename_exchange(const char *a, const char *b);

// pool.c — worker threads, one per core (ANEC_THREADS overrides, at most
// 16): rt_parallel calls fn(ctx, b) once for each block b in 0..blocks-1,
// spread over the workers and the caller, and returns when all are done.
// Called while the pool is busy, or from inside a block, it runs the blocks
// in the calling thread. Blocks must not depend on each other's order.
typedef void RtBlockFn(void *ctx, int64_t block);
void rt_parallel(int64_t blocks, RtBlockFn *fn, void *ctx);
// The threads rt_parallel uses (workers + the caller); starts them.
int rt_threads(void);
// Whether the calling thread is inside a block of rt_parallel.
bool rt_in_parallel(void);
// blas.c — row-major sgemm: C[m, n] = alpha op(A) op(B) + beta C, op(A)
// [m, k] (A is [k, m] when ta), op(B) [k, n] (B is [n, k] when tb). With
// OpenBLAS and a pool of 2+ threads, a large product is split over the pool
// (OpenBLAS single-threaded meanwhile); the blocks are fixed by the shape, so
// the result does not depend on which thread runs which. Inside a block of
// rt_parallel it is one BLAS call.
void rt_sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
// count products of one shape; product i reads a + aoff[i], b + boff[i] and
// writes c + coff[i] (element offsets). Spread over the pool by products.
void rt_sgemm_batch(int64_t count, const int64_t *aoff, const int64_t *boff,
                    const int64_t *coff, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                    float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                    float beta, float *c, int64_t ldc);
// rt_parallel for blocks that multiply (rt_sgemm in each): OpenBLAS runs
// single-threaded meanwhile.
void rt_parallel_blas(int64_t blocks, RtBlockFn *fn, void *ctx);

//
// bytes.c — little-endian integers, FNV-1a 64, splitmix64
//
uint64_t rt_get_le(const unsigned char *p, int bytes); // bytes <= 8
void rt_put_le(unsigned char *p, uint64_t v, int bytes);
#define RT_FNV_OFFSET 0xCBF29CE484222325ull
// FNV-1a 64 of n bytes, continuing from h (RT_FNV_OFFSET to start).
uint64_t rt_fnv1a(uint64_t h, const void *p, size_t n);
// The next number of a splitmix64 stream (Steele, Lea, Flood 2014): every
// seed, 0 too, gives a good stream, the same on every platform.
uint64_t rt_splitmix64(uint64_t *state);
// n values of Normal(0, std) for the parameter `name`: Box-Muller on the
// splitmix64 stream seeded with FNV-1a 64 of the name xor seed. The
// compiler's initializer and the trainer's, the same values on every platform.
void rt_fill_normal(float *v, int64_t n, double std, const char *name, uint64_t seed);

//
// fp16.c — IEEE half precision; F16C / NEON where the CPU has them
//
float fp16_to_f32(uint16_t h);
uint16_t f32_to_fp16(float f); // round to nearest even, overflow to inf
void fp16_to_f32_n(const uint16_t *in, float *out, size_t n);
void f32_to_fp16_n(const float *in, uint16_t *out, size_t n);
bool fp16_has_f16c(void); // x86 with F16C (the bulk conversions use it); false elsewhere


//
// fmt.c — numbers for reports
//
char *fmt_count(char *buf, size_t n, int64_t v);              // "1,234,567"
char *fmt_si(char *buf, size_t n, double v, const char *unit); // "2.10 GFLOP"

//
// opts.c — command lines from a table: a row per option (its long name,
// short letter, argument, help text and where its value goes), parsed in
// GNU style (--name=V, --name V, -xV, -x V, clustered -xy, unique prefixes of
// long names, "--" ends the options, options and arguments in any order)
// and printed as the --help. Never exits: a usage error is reported as
// "PROG: error: MESSAGE" and "Try 'PROG --help'." on stderr and returned.
//
typedef enum OptArg { OPT_ARG_NONE, OPT_ARG_REQUIRED, OPT_ARG_OPTIONAL } OptArg;
// Where a value goes: at dst + off, dst being opts_parse's.
typedef enum OptStore {
  OPT_STORE_FN,      // the row's fn stores it
  OPT_STORE_FLAG,    // bool: true
  OPT_STORE_STR,     // const char *: the value
  OPT_STORE_CHOICE,  // const char *: the value, one of the metavar's "a|b|c"
  OPT_STORE_INT,     // int64_t: decimal digits only, in [lo, hi]
  OPT_STORE_U64,     // uint64_t: decimal digits only
  OPT_STORE_REAL,    // double: as strtod reads it, in [lo, hi)
  OPT_STORE_HELP,    // prints the help on stdout; the parse ends (OPT_STATUS_HELP)
  OPT_STORE_INCLUDE, // the row *use (of a shared table), at off + use->off; this
                     // row's letter, metavar and help, where set, replace use's
} OptStore;
typedef enum OptStatus { OPT_STATUS_OK, OPT_STATUS_HELP, OPT_STATUS_ERROR } OptStatus;

typedef struct Opt Opt;
typedef struct OptSpec OptSpec;
// A handler: stores arg (NULL for OPT_ARG_NONE, and for OPT_ARG_OPTIONAL
// without a value) at dst; false after reporting a usage error (opts_error).
typedef bool OptFn(const OptSpec *s, const Opt *o, void *dst, const char *arg);
struct Opt {
  const char *name;    // the long option, without "--"; NULL: a short one only
  char letter;         // the short option; 0: none
  OptArg arg;          // OPT_ARG_OPTIONAL: --name=V, or the next argument
                       // unless it starts with '-'
  const char *metavar; // the value in the help: "NAME", "ane|cpu"
  const char *help;    // '\n' continues it on the next line
  OptStore store;
  size_t off;          // the destination's offset from dst
  double lo, hi;       // OPT_STORE_INT, OPT_STORE_REAL: the range
  OptFn *fn;           // OPT_STORE_FN
  const Opt *use;      // OPT_STORE_INCLUDE
};
struct OptSpec {
  const char *prog;    // in messages: "anec compile", a trainer's argv[0]
  const Opt *opts;
  int nopts;
  const char *usage;   // the help before the options' lines (NULL: none)
  const char *footer;  // and after them
  int help_col;        // the column of the options' help text ("  -x, --name=V  help");
                       // 0: each on the line below its option ("  --name V")
  bool pass_unknown;   // unknown options, exact names only, stay with the arguments
};

// Parses argv[1..argc) into dst, permuting argv so that the positional
// arguments end up, in their order, in argv[*first..argc).
OptStatus opts_parse(const OptSpec *s, void *dst, int argc, char **argv, int *first);
void opts_help(const OptSpec *s, FILE *out);
// A usage error: "PROG: error: MESSAGE\nTry 'PROG --help'.\n" on stderr.
void opts_error(const char *prog, const char *fmt, ...) ANERT_PRINTF(2, 3);
void opts_verror(const char *prog, const char *fmt, va_list ap);

#endif
