// test_catalog.c — the constraint catalog against its document, and the
// target profiles: every rule ID of ane-constraints.md exactly once, IDs
// and confidences that agree, per-chip values and switches, op sets.
// The document is tests/data/ane-constraints.md, the design note that the
// catalog transcribes (its "| ANE-" table rows: ID and confidence).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "driver.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

enum { MAX_DOC_RULES = 200 };

typedef struct DocRule {
  char id[16];
  char confidence[16]; // first word of the last column: firm, reported, disputed
} DocRule;

// The first word of the last cell of a table row ("| ... | firm: x |").
static void last_cell_word(const char *line, char *out, size_t n) {
  const char *end = strrchr(line, '|'), *p = end;
  while (p > line && p[-1] != '|')
    p--;
  while (p < end && *p == ' ')
    p++;
  size_t k = 0;
  while (p < end && isalpha((unsigned char)*p) && k + 1 < n)
    out[k++] = *p++;
  out[k] = '\0';
}

// The rows of the catalog's tables: lines that start with "| ANE-".
static int doc_rules(DocRule *out) {
  const char *path = ANEC_SOURCE_DIR "/tests/data/ane-constraints.md";
  FILE *f = fopen(path, "r");
  if (!f)
    fail_msg("cannot open %s", path);
  char line[4096];
  int n = 0;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "| ANE-", 6))
      continue;
    assert_true(n < MAX_DOC_RULES);
    size_t len = strcspn(line + 2, " |");
    assert_true(len < sizeof out[n].id);
    memcpy(out[n].id, line + 2, len);
    out[n].id[len] = '\0';
    last_cell_word(line, out[n].confidence, sizeof out[n].confidence);
    n++;
  }
  fclose(f);
  return n;
}

static void test_every_doc_rule_once(void **state) {
  (void)state;
  DocRule doc[MAX_DOC_RULES];
  int n = doc_rules(doc);
  assert_true(n >= 28); // T01-T11, B01-B11, P01-P06 when this was written
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < i; j++)
      if (!strcmp(doc[i].id, doc[j].id))
        fail_msg("%s appears twice in the document", doc[i].id);
    const Rule *r = rule_find(doc[i].id);
    if (!r)
      fail_msg("%s is in the document but not in compiler/catalog.h", doc[i].id);
    if (!strcmp(doc[i].confidence, "firm") || !strcmp(doc[i].confidence, "reported") ||
        !strcmp(doc[i].confidence, "disputed"))
      assert_string_equal(rule_confidence_name(r->confidence), doc[i].confidence);
  }
  // Rules are never deleted: a catalog row the document lacks must be retired.
  for (int r = 0; r < RULE_COUNT; r++) {
    int hits = 0;
    for (int i = 0; i < n; i++)
      hits += !strcmp(doc[i].id, catalog_rules[r].id);
    if (hits != 1 && !catalog_rules[r].retired)
      fail_msg("%s is in the catalog %d times in the document", catalog_rules[r].id, hits);
  }
}

static void test_rule_rows(void **state) {
  (void)state;
  for (int r = 0; r < RULE_COUNT; r++) {
    const Rule *x = &catalog_rules[r];
    assert_int_equal(strlen(x->id), 7);
    assert_memory_equal(x->id, "ANE-", 4);
    assert_non_null(strchr("TBP", x->id[4]));
    assert_true(isdigit((unsigned char)x->id[5]) && isdigit((unsigned char)x->id[6]));
    assert_ptr_equal(rule_find(x->id), x);
    assert_ptr_equal(rule_find(x->id + 4), x);
    assert_true(*x->text && *x->action_text && *x->source && *x->check_note);
    assert_null(strchr(x->text, '\n'));
    for (int s = 0; s < r; s++)
      assert_string_not_equal(catalog_rules[s].id, x->id);
  }
  assert_null(rule_find("ANE-T99"));
  assert_null(rule_find(""));
  assert_string_equal(catalog_rules[RULE_T03].id, "ANE-T03");
  assert_int_equal(catalog_rules[RULE_T01].check, CHECK_READER);
  assert_int_equal(catalog_rules[RULE_T01].action, ACT_EMITTER);
  assert_int_equal(catalog_rules[RULE_T01].severity, SEV_ERROR); // "emitter; reject in mil-check"
  assert_int_equal(catalog_rules[RULE_T02].severity, SEV_WARNING); // "emitter; warn in mil-check"
  assert_int_equal(catalog_rules[RULE_T08].action, ACT_CPU);
  assert_int_equal(catalog_rules[RULE_B07].confidence, CONF_DISPUTED);
  assert_int_equal(catalog_rules[RULE_P02].check, CHECK_NONE);
  assert_string_equal(rule_action_name(ACT_PACK), "pack");
  assert_string_equal(severity_name(SEV_WARNING), "warning");
}

static void test_profiles(void **state) {
  (void)state;
  const TargetProfile *m1 = target_find("m1"), *m4 = target_find("m4"), *m5 = target_find("m5");
  assert_non_null(m1);
  assert_non_null(m4);
  assert_non_null(m5);
  assert_ptr_equal(target_default(), m4);
  assert_string_equal(m1->program, "1.0");
  assert_string_equal(m1->opset, "ios16");
  assert_false(m1->in_graph_cast);
  assert_false(m1->short_literals);
  assert_true(m1->weight_file_per_matrix);
  assert_string_equal(m4->program, "1.3");
  assert_string_equal(m4->opset, "ios18");
  assert_true(m4->in_graph_cast);
  for (int i = 0; i < ntarget_profiles; i++) {
    const TargetProfile *t = &target_profiles[i];
    assert_int_equal(t->max_spatial, 16384);
    assert_int_equal(t->max_channels, 65536);
    assert_int_equal(t->conv_cin_reject, 32000);
    assert_int_equal(t->min_surface_bytes, 49152); // disputed: the safe side
    assert_true(t->equal_io_sizes);
    assert_int_equal(t->inputs, INPUTS_SINGLE);
    assert_int_equal(t->matmul_k_multiple, 32);
    assert_int_equal(t->compile_budget, 119);
    assert_int_equal(t->sram_bytes, 32 << 20);
  }
  assert_int_equal(m4->surface_align, 64);
  assert_int_equal(m5->surface_align, 128);
  // m5 is m4 plus 128-byte surfaces
  assert_string_equal(m5->program, m4->program);
  assert_string_equal(m5->opset, m4->opset);
  assert_int_equal(m5->short_literals, m4->short_literals);
  assert_int_equal(m5->in_graph_cast, m4->in_graph_cast);
  assert_int_equal(m5->weight_file_per_matrix, m4->weight_file_per_matrix);
  assert_int_equal(m5->matmul_k_error, m4->matmul_k_error);
  assert_true(m1->matmul_k_error); // B10 was reported on an M1
}

static void test_unknown_target(void **state) {
  (void)state;
  assert_null(target_find("m9"));
  assert_null(target_find(""));
  assert_null(target_find("M4"));
  char names[64];
  target_names(names, sizeof names);
  assert_string_equal(names, "m1, m4, m5");
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "'%s' mil-check --target m9 x.mil 2>/dev/null", ANEC_BINARY);
  int rc = system(cmd);
  assert_true(WIFEXITED(rc));
  assert_int_equal(WEXITSTATUS(rc), EXIT_USAGE);
}

static void test_op_sets(void **state) {
  (void)state;
  const TargetProfile *m1 = target_find("m1"), *m4 = target_find("m4");
  assert_true(target_op_allowed(m4, "conv"));
  assert_true(target_op_allowed(m1, "conv"));
  assert_true(target_op_allowed(m4, "cast"));
  assert_false(target_op_allowed(m1, "cast")); // ANE-T07
  assert_true(target_op_allowed(m4, "scaled_dot_product_attention"));
  assert_false(target_op_allowed(m1, "scaled_dot_product_attention")); // iOS18 op
  const char *cpu_only[] = {"gather", "gather_nd", "scatter", "scatter_nd", "reduce_prod",
                            "lstm", "gru", "rnn", "reduce_argmax", "", "no_such_op"};
  for (size_t i = 0; i < sizeof cpu_only / sizeof *cpu_only; i++)
    assert_false(target_op_allowed(m4, cpu_only[i]));
  for (int i = 0; i < nane_ops; i++) {
    assert_true(ane_ops[i].opset >= 15 && ane_ops[i].opset <= 18);
    for (int j = 0; j < i; j++)
      assert_string_not_equal(ane_ops[i].name, ane_ops[j].name);
  }
  assert_int_equal(opset_number("ios18"), 18);
  assert_int_equal(opset_number("ios16"), 16);
  assert_int_equal(opset_number("ios"), 0);
  assert_int_equal(opset_number("ios18x"), 0);
  assert_int_equal(opset_number("CoreML7"), 0);
}

static void test_rule_severity_per_target(void **state) {
  (void)state;
  const TargetProfile *m1 = target_find("m1"), *m4 = target_find("m4"), *m5 = target_find("m5");
  assert_int_equal(target_rule_severity(m1, RULE_B10), SEV_ERROR);
  assert_int_equal(target_rule_severity(m4, RULE_B10), SEV_WARNING);
  assert_int_equal(target_rule_severity(m4, RULE_B11), SEV_OFF);
  assert_int_equal(target_rule_severity(m5, RULE_B11), SEV_ERROR);
  assert_int_equal(target_rule_severity(m4, RULE_B04), SEV_WARNING);
  assert_int_equal(target_rule_severity(m5, RULE_B04), SEV_OFF); // B11 is stricter there
  assert_int_equal(target_rule_severity(m4, RULE_T03), SEV_ERROR);
  assert_int_equal(target_rule_severity(m4, RULE_P01), SEV_OFF);
  TargetProfile multi = *m4;
  multi.inputs = INPUTS_MULTI;
  multi.equal_io_sizes = false;
  assert_int_equal(target_rule_severity(&multi, RULE_B09), SEV_OFF);
  assert_int_equal(target_rule_severity(&multi, RULE_B08), SEV_OFF);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_doc_rule_once),
      cmocka_unit_test(test_rule_rows),
      cmocka_unit_test(test_profiles),
      cmocka_unit_test(test_unknown_target),
      cmocka_unit_test(test_op_sets),
      cmocka_unit_test(test_rule_severity_per_target),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
