// test_milcheck.c — the mil-check engine in process: the Core ML corpus on
// every target (no crash, every finding names a real, checkable rule, in
// source order), accepted kernels, weight files next to the program, and
// the catalog v2 checks per chip family (B12-B14, T12-T14, B07 rows, P03).
// Per-rule outputs of the command are golden cases (golden/milcheck.test).
// The corpus: tests/data/mil-corpus.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "driver.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUILD_INFO "[buildInfo = dict<string, string>({{\"coremlc-version\", \"3505.4.1\"}})]\n"

static const char conv_m4[] =
    "program(1.3)\n" BUILD_INFO
    "{\n"
    "    func main<ios18>(tensor<fp16, [1, 768, 1, 256]> x) {\n"
    "            string pt = const()[name = string(\"pt\"), val = string(\"valid\")];\n"
    "            tensor<int32, [2]> st = const()[name = string(\"st\"), val = tensor<int32, [2]>([1, 1])];\n"
    "            tensor<int32, [4]> pd = const()[name = string(\"pd\"), val = tensor<int32, [4]>([0, 0, 0, 0])];\n"
    "            tensor<int32, [2]> dl = const()[name = string(\"dl\"), val = tensor<int32, [2]>([1, 1])];\n"
    "            int32 gr = const()[name = string(\"gr\"), val = int32(1)];\n"
    "            tensor<fp16, [768, 768, 1, 1]> W = const()[name = string(\"W\"), val = tensor<fp16, [768, 768, 1, 1]>(BLOBFILE(path = string(\"@model_path/weights/weight.bin\"), offset = uint64(64)))];\n"
    "            tensor<fp16, [1, 768, 1, 256]> y = conv(dilations = dl, groups = gr, pad = pd, pad_type = pt, strides = st, weight = W, x = x)[name = string(\"conv\")];\n"
    "        } -> (y);\n"
    "}\n";

// A kernel that adds a [1, 768, 1, 32] fp16 constant from weights/w.bin.
static const char add_blob[] =
    "program(1.3)\n" BUILD_INFO
    "{\n"
    "    func main<ios18>(tensor<fp16, [1, 768, 1, 32]> x) {\n"
    "            tensor<fp16, [1, 768, 1, 32]> b = const()[name = string(\"b\"), val = tensor<fp16, [1, 768, 1, 32]>(BLOBFILE(path = string(\"@model_path/weights/w.bin\"), offset = uint64(64)))];\n"
    "            tensor<fp16, [1, 768, 1, 32]> y = add(x = x, y = b)[name = string(\"y\")];\n"
    "        } -> (y);\n"
    "}\n";

static MilProgram *read_text(const char *text, const char *dir) {
  RtDiag d = {.out = stderr};
  MilProgram *p = mil_read_text("t.mil", text, strlen(text), dir, &d);
  assert_non_null(p);
  return p;
}

// Whether a finding of rule r says `text`.
static bool rule_says(const MilCheck *c, RuleId r, const char *text) {
  for (int i = 0; i < c->n; i++)
    if (c->findings[i].rule == r && strstr(c->findings[i].msg, text))
      return true;
  return false;
}

static int count_rule(const MilCheck *c, RuleId r, Severity s) {
  int n = 0;
  for (int i = 0; i < c->n; i++)
    n += c->findings[i].rule == r && c->findings[i].severity == s;
  return n;
}

// What holds for the findings of any program on any target.
static void check_invariants(const MilProgram *p, const MilCheck *c, const TargetProfile *t) {
  int lines = 1, count[SEV_COUNT] = {0};
  for (size_t i = 0; i < p->len; i++)
    lines += p->text[i] == '\n';
  for (int i = 0; i < c->n; i++) {
    const MilFinding *f = &c->findings[i];
    assert_true(f->rule >= 0 && f->rule < RULE_COUNT);
    assert_ptr_equal(rule_find(catalog_rules[f->rule].id), &catalog_rules[f->rule]);
    assert_true(catalog_rules[f->rule].check == CHECK_STATIC || catalog_rules[f->rule].check == CHECK_PARTIAL);
    assert_true(f->severity >= SEV_INFO && f->severity <= SEV_ERROR);
    assert_int_not_equal(target_rule_severity(t, f->rule), SEV_OFF);
    assert_true(f->msg && *f->msg && !strchr(f->msg, '\n'));
    assert_true(f->loc.line >= 0 && f->loc.line <= lines);
    if (i)
      assert_true(c->findings[i - 1].loc.line < f->loc.line ||
                  (c->findings[i - 1].loc.line == f->loc.line &&
                   c->findings[i - 1].loc.col <= f->loc.col));
    count[f->severity]++;
  }
  for (int s = 0; s < SEV_COUNT; s++)
    assert_int_equal(count[s], c->count[s]);
}

static MilCheck check(const MilProgram *p, const char *target) {
  MilCheck c = {0};
  const TargetProfile *t = target_find(target);
  milcheck_run(&c, p, t);
  check_invariants(p, &c, t);
  return c;
}

static void test_corpus(void **state) {
  (void)state;
  const char *dir = ANEC_SOURCE_DIR "/tests/data/mil-corpus/apple-printed";
  DIR *d = opendir(dir);
  if (!d)
    fail_msg("cannot open %s", dir);
  int files = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (n < 5 || strcmp(e->d_name + n - 4, ".mil"))
      continue;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    RtDiag rd = {.out = stderr};
    MilProgram *p = mil_read_file(path, &rd);
    if (!p)
      fail_msg("the reader rejects %s", path);
    for (int t = 0; t < ntarget_profiles; t++) {
      MilCheck c = check(p, target_profiles[t].name);
      // Core ML CPU programs: never an ANE-shaped I/O, so always findings.
      assert_true(c.n > 0);
      milcheck_free(&c);
    }
    mil_free(p);
    files++;
  }
  closedir(d);
  assert_true(files >= 20);
}

static void test_corpus_findings(void **state) {
  (void)state;
  RtDiag rd = {.out = stderr};
  MilProgram *p = mil_read_file(
      ANEC_SOURCE_DIR "/tests/data/mil-corpus/apple-printed/fixtures-flexible-gather.mil", &rd);
  assert_non_null(p);
  MilCheck c = check(p, "m4");
  assert_int_equal(count_rule(&c, RULE_T08, SEV_ERROR), 2); // less, gather
  assert_int_equal(count_rule(&c, RULE_B03, SEV_ERROR), 1); // dynamic shapes, once per function
  assert_int_equal(count_rule(&c, RULE_B01, SEV_ERROR), 7); // 3 I/O; int32 mul, add, maximum,
                                                            // minimum (less, gather: T08)
  milcheck_free(&c);
  mil_free(p);
}

static void test_accepted_kernels(void **state) {
  (void)state;
  MilProgram *p = read_text(conv_m4, "/nonexistent");
  MilCheck c = check(p, "m4");
  assert_int_equal(c.count[SEV_ERROR], 0);
  assert_int_equal(c.count[SEV_WARNING], 0);
  assert_int_equal(count_rule(&c, RULE_T06, SEV_INFO), 1); // weights file not there
  milcheck_free(&c);
  c = check(p, "m5");
  assert_int_equal(c.count[SEV_ERROR], 0); // 256 fp16 = 512 bytes: 128-aligned
  milcheck_free(&c);
  c = check(p, "m1");
  assert_int_equal(count_rule(&c, RULE_T07, SEV_ERROR), 3); // program(1.3), ios18, int32(1)
  milcheck_free(&c);
  mil_free(p);
}

// A MILBlob v2 file with one fp16 blob of n elements, all `value`.
static void write_blob(const char *path, int n, float value, uint64_t *offset) {
  uint16_t *h = malloc((size_t)n * 2);
  for (int i = 0; i < n; i++)
    h[i] = f32_to_fp16(value);
  MilBlob b = {MILBLOB_FP16, (uint64_t)n * 2, (const unsigned char *)h};
  RtDiag d = {.out = stderr};
  assert_true(milblob_write(path, &b, 1, offset, &d));
  free(h);
}

static void test_weights_file(void **state) {
  (void)state;
  char dir[] = "/tmp/anec-milcheck-XXXXXX", wdir[64], wfile[96];
  assert_non_null(mkdtemp(dir));
  snprintf(wdir, sizeof wdir, "%s/weights", dir);
  snprintf(wfile, sizeof wfile, "%s/w.bin", wdir);
  assert_int_equal(mkdir(wdir, 0700), 0);
  uint64_t off = 0;
  write_blob(wfile, 768 * 32, 1.0f, &off);
  assert_int_equal(off, 64);
  MilProgram *p = read_text(add_blob, dir);
  MilCheck c = check(p, "m4");
  assert_int_equal(c.n, 0); // checked and clean
  milcheck_free(&c);

  write_blob(wfile, 768 * 32, -INFINITY, &off); // T10 in the data
  c = check(p, "m4");
  assert_int_equal(count_rule(&c, RULE_T10, SEV_ERROR), 1);
  milcheck_free(&c);

  write_blob(wfile, 16, 0.0f, &off); // too small for the declared type
  c = check(p, "m4");
  assert_int_equal(count_rule(&c, RULE_T06, SEV_ERROR), 1);
  milcheck_free(&c);

  FILE *f = fopen(wfile, "wb"); // not a MILBlob file
  fputs("garbage", f);
  fclose(f);
  c = check(p, "m4");
  assert_int_equal(count_rule(&c, RULE_T06, SEV_ERROR), 1);
  milcheck_free(&c);
  mil_free(p);
  unlink(wfile);
  rmdir(wdir);
  rmdir(dir);
}

// The classifier pattern of the Stories110M training step: rank-2 values
// with a 32,000 axis and a matmul contracting over 32,000.
static const char classifier[] =
    "program(1.3)\n" BUILD_INFO
    "{\n"
    "    func main<ios18>(tensor<fp16, [1, 32000, 1, 256]> in00) {\n"
    "            tensor<int32, [2]> s = const()[name = string(\"s\"), val = tensor<int32, [2]>([32000, 256])];\n"
    "            tensor<fp16, [32000, 256]> g = reshape(shape = s, x = in00)[name = string(\"g\")];\n"
    "            tensor<fp16, [256, 256]> y = matmul(transpose_x = bool(true), transpose_y = bool(false), x = g, y = g)[name = string(\"y\")];\n"
    "            tensor<int32, [4]> s4 = const()[name = string(\"s4\"), val = tensor<int32, [4]>([1, 256, 1, 256])];\n"
    "            tensor<fp16, [1, 256, 1, 256]> out00 = reshape(shape = s4, x = y)[name = string(\"out00\")];\n"
    "        } -> (out00);\n"
    "}\n";

static void test_family_extents(void **state) {
  (void)state;
  MilProgram *p = read_text(classifier, "/nonexistent");
  const char *capped[] = {"m3", "m4"};
  for (int i = 0; i < 2; i++) {
    MilCheck c = check(p, capped[i]);
    bool m3 = i == 0; // 16,384 on M1-M3, 65,536 on M4/M5
    assert_int_equal(count_rule(&c, RULE_B12, SEV_WARNING), m3 ? 2 : 0); // axis 0 of g, K
    assert_int_equal(c.count[SEV_ERROR], 0);
    milcheck_free(&c);
  }
  MilCheck c = check(p, "m5");
  assert_int_equal(c.n, 0);
  milcheck_free(&c);
  c = check(p, "m1"); // the dialect's errors, and the same cap as m3
  assert_int_equal(count_rule(&c, RULE_B12, SEV_WARNING), 2);
  milcheck_free(&c);
  mil_free(p);
}

// Rank 5, strips, softmax, weight paths, buildInfo: one program, all warnings.
static const char layout_issues[] =
    "program(1.3)\n"
    "{\n"
    "    func main<ios18>(tensor<fp16, [1, 64, 1, 1088]> in00) {\n"
    "            tensor<fp16, [1, 64, 1, 1]> v = slice_by_size(begin = tensor<int32, [4]>([0, 0, 0, 1024]), size = tensor<int32, [4]>([1, 64, 1, 1]), x = in00)[name = string(\"v\")];\n"
    "            tensor<fp16, [1, 64, 1, 1]> u = slice_by_size(begin = tensor<int32, [4]>([0, 0, 0, 1025]), size = tensor<int32, [4]>([1, 64, 1, 1]), x = in00)[name = string(\"u\")];\n"
    "            tensor<fp16, [1, 64, 1, 1000]> a = slice_by_size(begin = tensor<int32, [4]>([0, 0, 0, 0]), size = tensor<int32, [4]>([1, 64, 1, 1000]), x = in00)[name = string(\"a\")];\n"
    "            tensor<fp16, [1, 64, 1, 1000]> b = softmax(axis = int32(-1), x = a)[name = string(\"b\")];\n"
    "            tensor<fp16, [1, 2, 32, 1, 1000]> r = reshape(shape = tensor<int32, [5]>([1, 2, 32, 1, 1000]), x = b)[name = string(\"r\")];\n"
    "            tensor<fp16, [1, 64, 1, 1000]> w = const()[name = string(\"w\"), val = tensor<fp16, [1, 64, 1, 1000]>(BLOBFILE(path = string(\"@model_path/k00/weights/weight.bin\"), offset = uint64(64)))];\n"
    "            tensor<fp16, [1, 64, 1, 1]> s = add(x = v, y = u)[name = string(\"s\")];\n"
    "            tensor<fp16, [1, 64, 1, 1000]> t = mul(x = w, y = s)[name = string(\"t\")];\n"
    "            tensor<fp16, [1, 64, 1, 1024]> out00 = concat(axis = int32(3), interleave = bool(false), values = (t, a, b))[name = string(\"out00\")];\n"
    "        } -> (out00);\n"
    "}\n";

static void test_layout_warnings(void **state) {
  (void)state;
  MilProgram *p = read_text(layout_issues, "/nonexistent");
  for (int t = 0; t < ntarget_profiles; t++) {
    if (!strcmp(target_profiles[t].name, "m1"))
      continue; // the m1 dialect adds T07 errors
    MilCheck c = check(p, target_profiles[t].name);
    assert_int_equal(count_rule(&c, RULE_B14, SEV_ERROR), 1); // 1025; 1024 and 0 are aligned
    assert_int_equal(count_rule(&c, RULE_T14, SEV_WARNING), 1); // 1000
    assert_int_equal(count_rule(&c, RULE_B13, SEV_WARNING), 1); // r
    assert_int_equal(count_rule(&c, RULE_T12, SEV_WARNING), 1); // k00/weights/
    assert_int_equal(count_rule(&c, RULE_T13, SEV_WARNING), 1); // no buildInfo
    milcheck_free(&c);
  }
  TargetProfile loose = *target_find("m4");
  loose.strip_align = 1;
  MilCheck c = {0};
  milcheck_run(&c, p, &loose);
  assert_int_equal(count_rule(&c, RULE_B14, SEV_ERROR), 0);
  milcheck_free(&c);
  mil_free(p);
}

// B07: rows under 64 bytes; P03: the working set past SRAM, a warning.
static void test_rows_and_sram(void **state) {
  (void)state;
  static const char narrow[] =
      "program(1.3)\n" BUILD_INFO
      "{\n"
      "    func main<ios18>(tensor<fp16, [1, 4096, 1, 16]> x) {\n"
      "            tensor<fp16, [1, 4096, 1, 16]> y = sigmoid(x = x)[name = string(\"y\")];\n"
      "        } -> (y);\n"
      "}\n";
  MilProgram *p = read_text(narrow, "/nonexistent");
  MilCheck c = check(p, "m4"); // 131,072 bytes, but rows of 32 bytes
  assert_int_equal(count_rule(&c, RULE_B07, SEV_ERROR), 2);
  assert_int_equal(count_rule(&c, RULE_B04, SEV_WARNING), 2);
  assert_true(rule_says(&c, RULE_B07, "rows of 32 bytes (last axis 16 x fp16), under target m4's "
                                     "64-byte per-row minimum"));
  milcheck_free(&c);
  mil_free(p);
  static const char big[] =
      "program(1.3)\n" BUILD_INFO
      "{\n"
      "    func main<ios18>(tensor<fp16, [1, 8192, 1, 8192]> x) {\n"
      "            tensor<fp16, [1, 8192, 1, 8192]> y = sigmoid(x = x)[name = string(\"y\")];\n"
      "        } -> (y);\n"
      "}\n";
  p = read_text(big, "/nonexistent");
  c = check(p, "m4"); // 256 MB in and out: past the curve's last point (128 MB, 29%)
  assert_int_equal(count_rule(&c, RULE_P03, SEV_WARNING), 1);
  assert_true(rule_says(&c, RULE_P03, "(256.0 MB)"));
  assert_true(rule_says(&c, RULE_P03, "expect under 29% of the throughput in SRAM"));
  milcheck_free(&c);
  mil_free(p);
  static const char mid[] =
      "program(1.3)\n" BUILD_INFO
      "{\n"
      "    func main<ios18>(tensor<fp16, [1, 8192, 1, 2240]> x) {\n"
      "            tensor<fp16, [1, 8192, 1, 2240]> y = sigmoid(x = x)[name = string(\"y\")];\n"
      "        } -> (y);\n"
      "}\n";
  p = read_text(mid, "/nonexistent");
  c = check(p, "m4"); // 70 MB: between the curve's 32 and 128 MB points (log-log)
  assert_true(rule_says(&c, RULE_P03, "(70.0 MB)"));
  assert_true(rule_says(&c, RULE_P03, "expect ~38% of the throughput in SRAM"));
  milcheck_free(&c);
  mil_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_corpus),
      cmocka_unit_test(test_corpus_findings),
      cmocka_unit_test(test_accepted_kernels),
      cmocka_unit_test(test_weights_file),
      cmocka_unit_test(test_family_extents),
      cmocka_unit_test(test_layout_warnings),
      cmocka_unit_test(test_rows_and_sram),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
