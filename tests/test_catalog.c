// test_catalog.c — the constraint catalog against its document, and the
// target profiles: every rule ID of ane-constraints.md exactly once, IDs,
// evidence kinds and confidences that agree, per-chip values and switches
// with a citation for each, op sets, and profile files (--profile).
// The document is tests/data/ane-constraints.md, the design note that the
// catalog transcribes (its "| ANE-" table rows: ID, evidence, confidence).
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
#include <unistd.h>

enum { MAX_DOC_RULES = 200 };

typedef struct DocRule {
  char id[16];
  char evidence[16];   // the next-to-last column: source, reported, inferred, disputed
  char confidence[16]; // first word of the last column: firm, reported, disputed
} DocRule;

// The first word of the cell `back` cells before the last of a table row
// ("| ... | reported | firm: x |": 0 is "firm", 1 "reported").
static void cell_word(const char *line, int back, char *out, size_t n) {
  const char *end = strrchr(line, '|'), *p = end;
  for (int i = 0; i < back && end > line; i++) {
    end--;
    while (end > line && *end != '|')
      end--;
  }
  p = end;
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
    cell_word(line, 0, out[n].confidence, sizeof out[n].confidence);
    cell_word(line, 1, out[n].evidence, sizeof out[n].evidence);
    n++;
  }
  fclose(f);
  return n;
}

static void test_every_doc_rule_once(void **state) {
  (void)state;
  DocRule doc[MAX_DOC_RULES];
  int n = doc_rules(doc);
  assert_true(n >= 37); // T01-T14, B01-B14, P01-P07, N01-N02 when this was written
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < i; j++)
      if (!strcmp(doc[i].id, doc[j].id))
        fail_msg("%s appears twice in the document", doc[i].id);
    const Rule *r = rule_find(doc[i].id);
    if (!r)
      fail_msg("%s is in the document but not in compiler/catalog.h", doc[i].id);
    if (strcmp(doc[i].confidence, "firm") && strcmp(doc[i].confidence, "reported") &&
        strcmp(doc[i].confidence, "disputed"))
      fail_msg("%s: confidence '%s' is not firm, reported or disputed", doc[i].id,
               doc[i].confidence);
    if (strcmp(rule_confidence_name(r->confidence), doc[i].confidence))
      fail_msg("%s: the document says %s, the catalog %s", doc[i].id, doc[i].confidence,
               rule_confidence_name(r->confidence));
    if (strcmp(evidence_name(r->evidence), doc[i].evidence))
      fail_msg("%s: the document's evidence is '%s', the catalog's %s", doc[i].id,
               doc[i].evidence, evidence_name(r->evidence));
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
    assert_non_null(strchr("TBPN", x->id[4]));
    assert_true(isdigit((unsigned char)x->id[5]) && isdigit((unsigned char)x->id[6]));
    assert_ptr_equal(rule_find(x->id), x);
    assert_ptr_equal(rule_find(x->id + 4), x);
    assert_true(*x->text && *x->action_text && *x->source && *x->check_note);
    assert_true(x->evidence != EV_PROFILE); // a kind of profile values only
    // disputed rules say so in both columns
    assert_int_equal(x->confidence == CONF_DISPUTED, x->evidence == EV_DISPUTED);
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
  assert_int_equal(catalog_rules[RULE_T05].evidence, EV_DISPUTED); // fspecii, M4
  assert_non_null(strstr(catalog_rules[RULE_B07].text, "per-row"));
  assert_int_equal(catalog_rules[RULE_P03].action, ACT_COST); // a cost, not an error
  assert_int_equal(catalog_rules[RULE_N01].check, CHECK_NONE);
  assert_int_equal(catalog_rules[RULE_N02].check, CHECK_NONE);
  assert_int_equal(catalog_rules[RULE_P07].check, CHECK_NONE);
  assert_int_equal(catalog_rules[RULE_B14].severity, SEV_ERROR); // the emitter follows it
  // warnings until the plans follow them
  const RuleId later[] = {RULE_T12, RULE_T13, RULE_B12, RULE_B13, RULE_T14};
  for (size_t i = 0; i < sizeof later / sizeof *later; i++) {
    assert_int_equal(catalog_rules[later[i]].check, CHECK_STATIC);
    assert_int_equal(catalog_rules[later[i]].severity, SEV_WARNING);
  }
  assert_string_equal(evidence_name(EV_INFERRED), "inferred");
  assert_int_equal(evidence_lookup("reported"), EV_REPORTED);
  assert_int_equal(evidence_lookup("firm"), -1);
  assert_int_equal(catalog_rules[RULE_P02].check, CHECK_NONE);
  assert_string_equal(rule_action_name(ACT_PACK), "pack");
  assert_string_equal(severity_name(SEV_WARNING), "warning");
}

static void test_profiles(void **state) {
  (void)state;
  const TargetProfile *m1 = target_find("m1"), *m3 = target_find("m3"), *m4 = target_find("m4"),
                      *m5 = target_find("m5");
  assert_non_null(m1);
  assert_non_null(m3);
  assert_non_null(m4);
  assert_non_null(m5);
  assert_ptr_equal(target_default(), m4);
  assert_string_equal(m1->chips, "M1, M2");
  assert_string_equal(m3->chips, "M3");
  assert_string_equal(m4->chips, "M4");
  assert_string_equal(m5->chips, "M5");
  assert_string_equal(m1->program, "1.0");
  assert_string_equal(m1->opset, "ios16");
  assert_false(m1->in_graph_cast);
  assert_false(m1->short_literals);
  assert_true(m1->weight_file_per_matrix);
  // the family's extent cap (ANEForge): A13-A15 16,384, A16 65,536
  assert_int_equal(m1->max_spatial, 16384);
  assert_int_equal(m3->max_spatial, 16384);
  assert_int_equal(m4->max_spatial, 65536);
  assert_int_equal(m5->max_spatial, 65536);
  for (int i = 0; i < ntarget_profiles; i++) {
    const TargetProfile *t = &target_profiles[i];
    assert_int_equal(t->max_channels, 65536);
    assert_int_equal(t->conv_cin_reject, 32000);
    assert_int_equal(t->min_surface_bytes, 49152); // disputed: the safe side
    assert_int_equal(t->min_row_bytes, 64);
    assert_true(t->equal_io_sizes);
    assert_int_equal(t->inputs, INPUTS_SINGLE);
    assert_int_equal(t->matmul_k_multiple, 32);
    assert_int_equal(t->strip_align, 64);
    assert_int_equal(t->compile_budget, 119);
    assert_int_equal(t->program_budget, 120);
    assert_int_equal(t->sram_bytes, 32 << 20);
    if (t != m1) { // m3, m4, m5: the program(1.3) dialect
      assert_string_equal(t->program, "1.3");
      assert_string_equal(t->opset, "ios18");
      assert_true(t->short_literals);
      assert_true(t->in_graph_cast);
      assert_false(t->weight_file_per_matrix);
      assert_false(t->matmul_k_error);
    }
  }
  assert_int_equal(m3->surface_align, 64);
  assert_int_equal(m4->surface_align, 64);
  assert_int_equal(m5->surface_align, 128);
  assert_true(m1->matmul_k_error); // B10 was reported on an M1
}

// Every value a rule reads carries its source and kind of evidence, in
// every built-in profile; the field table covers TargetProfile.
static void test_profile_citations(void **state) {
  (void)state;
  assert_int_equal(nprofile_fields, 22); // every member of TargetProfile but cites
  for (int i = 0; i < nprofile_fields; i++) {
    const ProfileField *f = &profile_fields[i];
    assert_ptr_equal(profile_field(f->name), f);
    for (int t = 0; t < ntarget_profiles && f->rules; t++) {
      const Cite *c = target_cite(&target_profiles[t], f->name);
      if (!c)
        fail_msg("profile %s: %s has no source", target_profiles[t].name, f->name);
      assert_true(*c->source && c->evidence != EV_PROFILE);
    }
  }
  assert_null(profile_field("no_such_field"));
  assert_null(target_cite(target_find("m4"), "no_such_field"));
  const Cite *c = target_cite(target_find("m3"), "max_spatial");
  assert_non_null(strstr(c->source, "rustane #13"));
  assert_int_equal(c->evidence, EV_REPORTED);
  c = target_cite(target_find("m4"), "max_spatial");
  assert_int_equal(c->evidence, EV_INFERRED); // A16 measured on M5; M4 by the family ladder
  char buf[32];
  const TargetProfile *m5 = target_find("m5");
  assert_string_equal(profile_field_text(m5, profile_field("surface_align"), buf, sizeof buf),
                      "128");
  assert_string_equal(profile_field_text(m5, profile_field("inputs"), buf, sizeof buf), "single");
  assert_string_equal(profile_field_text(m5, profile_field("in_graph_cast"), buf, sizeof buf),
                      "true");
  assert_string_equal(profile_field_text(m5, profile_field("program"), buf, sizeof buf), "1.3");
}

static void test_unknown_target(void **state) {
  (void)state;
  assert_null(target_find("m9"));
  assert_null(target_find(""));
  assert_null(target_find("M4"));
  char names[64];
  target_names(names, sizeof names);
  assert_string_equal(names, "m1, m3, m4, m5");
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "'%s' mil-check --target m9 x.mil 2>/dev/null", ANEC_BINARY);
  int rc = system(cmd);
  assert_true(WIFEXITED(rc));
  assert_int_equal(WEXITSTATUS(rc), EXIT_USAGE);
}

//
// Profile files
//

static char profile_dir[] = "/tmp/anec-test-catalog-XXXXXX";

// Loads `json` written to a file; the messages in *msg (freed by the caller).
static const TargetProfile *load_json(Arena *a, const char *json, char **msg) {
  char path[128];
  snprintf(path, sizeof path, "%s/p.json", profile_dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(json, f);
  fclose(f);
  size_t len;
  FILE *mem = open_memstream(msg, &len);
  RtDiag d = {.out = mem};
  const TargetProfile *t = target_profile_load(path, a, &d);
  fclose(mem);
  assert_true(t ? d.errors == 0 : d.errors > 0);
  return t;
}

static void test_profile_file_good(void **state) {
  (void)state;
  assert_non_null(mkdtemp(profile_dir));
  Arena a = {0};
  char *msg = NULL;
  const TargetProfile *t = load_json(
      &a,
      "{\"base\": \"m3\", \"name\": \"m3-lab\", \"chips\": \"M3 Max\", \"max_spatial\": 20000,\n"
      " \"inputs\": \"multi\", \"equal_io_sizes\": false, \"surface_align\": 128,\n"
      " \"program\": \"1.3\", \"opset\": \"ios17\",\n"
      " \"sources\": {\"max_spatial\": {\"source\": \"our M3 Max, 2026-12\", "
      "\"evidence\": \"reported\"}}}\n",
      &msg);
  assert_string_equal(msg, "");
  assert_non_null(t);
  const TargetProfile *m3 = target_find("m3");
  assert_string_equal(t->name, "m3-lab");
  assert_string_equal(t->chips, "M3 Max");
  assert_int_equal(t->max_spatial, 20000);
  assert_int_equal(t->inputs, INPUTS_MULTI);
  assert_false(t->equal_io_sizes);
  assert_int_equal(t->surface_align, 128);
  assert_string_equal(t->opset, "ios17");
  assert_int_equal(t->max_channels, m3->max_channels); // the base's
  assert_int_equal(m3->max_spatial, 16384);            // the base is untouched
  const Cite *c = target_cite(t, "max_spatial");
  assert_string_equal(c->source, "our M3 Max, 2026-12");
  assert_int_equal(c->evidence, EV_REPORTED);
  c = target_cite(t, "inputs"); // set without a source: the file
  assert_int_equal(c->evidence, EV_PROFILE);
  assert_non_null(strstr(c->source, "p.json"));
  c = target_cite(t, "max_channels"); // not set: the base's
  assert_string_equal(c->source, target_cite(m3, "max_channels")->source);
  assert_int_equal(c->evidence, target_cite(m3, "max_channels")->evidence);
  assert_int_equal(target_rule_severity(t, RULE_B09), SEV_OFF);
  assert_int_equal(target_rule_severity(t, RULE_B11), SEV_ERROR);
  free(msg);
  t = load_json(&a, "{\"base\": \"m1\"}", &msg); // the base itself, renamed nothing
  assert_non_null(t);
  assert_string_equal(t->name, "m1");
  assert_int_equal(t->max_spatial, 16384);
  free(msg);
  arena_free(&a);
}

static void expect_error(const char *json, const char *want) {
  Arena a = {0};
  char *msg = NULL;
  assert_null(load_json(&a, json, &msg));
  if (!strstr(msg, want))
    fail_msg("expected '%s' in: %s", want, msg);
  assert_non_null(strstr(msg, "p.json: error: ")); // names the file
  free(msg);
  arena_free(&a);
}

static void test_profile_file_bad(void **state) {
  (void)state;
  expect_error("{\"max_spatial\": 1}", "field 'base': missing");
  expect_error("{\"base\": \"m9\"}",
               "field 'base': unknown target \"m9\" (known: m1, m3, m4, m5)");
  expect_error("[1, 2]", "a profile is a JSON object");
  expect_error("{\"base\": \"m4\",", "line 1, column 15: not valid JSON");
  expect_error("{\"base\": \"m4\"} x", "not valid JSON");
  expect_error("{\"base\": \"m4\", \"max_spacial\": 1}", "field 'max_spacial': unknown");
  expect_error("{\"base\": \"m4\", \"max_spatial\": -1}",
               "field 'max_spatial': expected an integer in [1, 2147483648], got -1");
  expect_error("{\"base\": \"m4\", \"max_spatial\": 1.5}",
               "field 'max_spatial': expected an integer");
  expect_error("{\"base\": \"m4\", \"max_spatial\": \"16384\"}", "got \"16384\"");
  expect_error("{\"base\": \"m4\", \"surface_align\": 96}",
               "field 'surface_align': expected an integer power of 2 in [1, 4096], got 96");
  expect_error("{\"base\": \"m4\", \"in_graph_cast\": 1}",
               "field 'in_graph_cast': expected true or false, got 1");
  expect_error("{\"base\": \"m4\", \"inputs\": \"two\"}",
               "field 'inputs': expected \"single\" or \"multi\", got \"two\"");
  expect_error("{\"base\": \"m4\", \"program\": \"1.x\"}",
               "field 'program': expected a MIL program version");
  expect_error("{\"base\": \"m4\", \"opset\": \"CoreML7\"}", "field 'opset': expected an opset");
  expect_error("{\"base\": \"m4\", \"chips\": \"\"}",
               "field 'chips': expected a non-empty string");
  expect_error("{\"base\": \"m4\", \"name\": \"m1\"}",
               "field 'name': 'm1' is another built-in profile");
  expect_error("{\"base\": \"m4\", \"max_spatial\": 1, \"max_spatial\": 2}",
               "field 'max_spatial': given twice");
  expect_error("{\"base\": \"m4\", \"sources\": {\"max_spatial\": {\"source\": \"x\", "
               "\"evidence\": \"reported\"}}}",
               "field 'sources.max_spatial': cites a field the file does not set");
  expect_error("{\"base\": \"m4\", \"max_spatial\": 1, \"sources\": {\"max_spatial\": "
               "{\"source\": \"x\", \"evidence\": \"firm\"}}}",
               "field 'sources.max_spatial': evidence \"firm\" is not one of");
  expect_error("{\"base\": \"m4\", \"max_spatial\": 1, \"sources\": {\"max_spatial\": \"x\"}}",
               "field 'sources.max_spatial': expected {\"source\"");
  expect_error("{\"base\": \"m4\", \"sources\": []}", "field 'sources': expected an object");
  // every bad field is reported, not only the first
  Arena a = {0};
  char *msg = NULL;
  assert_null(load_json(&a, "{\"base\": \"m4\", \"max_spatial\": 0, \"inputs\": 3}", &msg));
  assert_non_null(strstr(msg, "field 'max_spatial'"));
  assert_non_null(strstr(msg, "field 'inputs'"));
  free(msg);
  arena_free(&a);
  char path[128];
  snprintf(path, sizeof path, "%s/p.json", profile_dir);
  unlink(path);
  RtDiag d = {.out = NULL};
  assert_null(target_profile_load(path, &a, &d)); // missing
  assert_int_equal(d.errors, 1);
  arena_free(&a);
  rmdir(profile_dir);
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
  assert_int_equal(target_rule_severity(m4, RULE_B14), SEV_ERROR);
  multi.strip_align = 1; // no strips
  assert_int_equal(target_rule_severity(&multi, RULE_B14), SEV_OFF);
  assert_int_equal(target_rule_severity(m4, RULE_N01), SEV_OFF); // not checkable
  assert_int_equal(target_rule_severity(m1, RULE_B12), SEV_WARNING);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_doc_rule_once),
      cmocka_unit_test(test_rule_rows),
      cmocka_unit_test(test_profiles),
      cmocka_unit_test(test_profile_citations),
      cmocka_unit_test(test_unknown_target),
      cmocka_unit_test(test_profile_file_good),
      cmocka_unit_test(test_profile_file_bad),
      cmocka_unit_test(test_op_sets),
      cmocka_unit_test(test_rule_severity_per_target),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
