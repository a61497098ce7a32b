// cmd_mil_check.c — `anec mil-check F.mil [--target T | --profile P.json]
// [--json]`: reads any MIL program, checks it against the constraint catalog
// for one target and reports every finding with its rule; `--list-rules`
// prints the profile (each value with its source) and the catalog.
// Exit 0 when the ANE would accept the program (warnings allowed), else 1.
#include "driver.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

typedef struct MilCheckArgs {
  const TargetProfile *target; // NULL until --target or --profile
  const char *profile;         // --profile FILE.json
  const char *path;
  bool json, verbose, list_rules;
} MilCheckArgs;

#define AT(field) offsetof(MilCheckArgs, field)
static const Opt opts[] = {
    {CLI_USE(CLI_OPT_TARGET, AT(target)), .letter = 't',
     .help = "target profile: m1 (M1, M2), m3 (M3), m4 (M4; the default), m5 (M5)"},
    {"profile", 0, OPT_ARG_REQUIRED, "FILE",
     "a JSON profile: \"base\" names a built-in one, other keys\nset its fields by name "
     "(--list-rules --json lists them)",
     .store = OPT_STORE_STR, .off = AT(profile)},
    {"json", 0, OPT_ARG_NONE, NULL, "write the result as a JSON document on stdout",
     .store = OPT_STORE_FLAG, .off = AT(json)},
    {"verbose", 'v', OPT_ARG_NONE, NULL, "explain each rule that is not checkable statically",
     .store = OPT_STORE_FLAG, .off = AT(verbose)},
    {"list-rules", 0, OPT_ARG_NONE, NULL,
     "print the target's values with their sources, and the\ncatalog (ID, action, "
     "severity, confidence, evidence, rule,\nsource)",
     .store = OPT_STORE_FLAG, .off = AT(list_rules)},
    {CLI_USE(CLI_OPT_HELP, 0)},
};

static const OptSpec spec = {
    .prog = "anec mil-check",
    .opts = opts,
    .nopts = sizeof opts / sizeof *opts,
    .help_col = 22,
    .usage = "Usage: anec mil-check [OPTIONS] PROGRAM.mil\n"
             "       anec mil-check --list-rules [--target NAME | --profile FILE] [--json]\n"
             "Check a MIL program against the ANE constraint catalog for one target chip.\n"
             "Exit status 0 when the ANE would accept it (warnings allowed), 1 otherwise.\n\n",
};

// 0 to go on, -1 after --help, else the exit code to return.
static int parse_args(MilCheckArgs *a, int argc, char **argv) {
  int first, rc = cli_parse(&spec, a, argc, argv, &first);
  if (rc)
    return rc;
  if (a->list_rules && first < argc) {
    cli_usage_error("mil-check", "--list-rules takes no program, got '%s'", argv[first]);
    return EXIT_USAGE;
  }
  if (!a->list_rules && first >= argc) {
    cli_usage_error("mil-check", "no MIL program given");
    return EXIT_USAGE;
  }
  if (first + 1 < argc) {
    cli_usage_error("mil-check", "unexpected argument '%s'", argv[first + 1]);
    return EXIT_USAGE;
  }
  if (a->target && a->profile) {
    cli_usage_error("mil-check", "--target and --profile exclude each other (a profile names "
                    "its base)");
    return EXIT_USAGE;
  }
  a->path = argv[first];
  return 0;
}

//
// JSON (cJSON builds the document; nothing here writes JSON by hand)
//

static bool json_print(cJSON *doc) {
  char *s = doc ? cJSON_Print(doc) : NULL;
  bool ok = s && printf("%s\n", s) >= 0 && fflush(stdout) == 0;
  if (!ok)
    fputs("anec: error: cannot write the JSON document\n", stderr);
  cJSON_free(s);
  cJSON_Delete(doc);
  return ok;
}

static void json_add_str(cJSON *o, const char *key, const char *s) {
  if (s)
    cJSON_AddStringToObject(o, key, s);
  else
    cJSON_AddNullToObject(o, key);
}

static void json_add_field(cJSON *o, const TargetProfile *t, const ProfileField *f) {
  const char *s = profile_field_str(t, f);
  int64_t v = profile_field_int(t, f);
  if (s)
    cJSON_AddStringToObject(o, f->name, s);
  else if (f->kind == PF_BOOL)
    cJSON_AddBoolToObject(o, f->name, v);
  else if (f->kind == PF_INPUTS)
    cJSON_AddStringToObject(o, f->name, v == INPUTS_SINGLE ? "single" : "multi");
  else
    cJSON_AddNumberToObject(o, f->name, (double)v);
}

// {"FIELD": {"source": "...", "evidence": "reported"}}: the form a profile
// file's "sources" takes.
static cJSON *json_sources(const TargetProfile *t) {
  cJSON *o = cJSON_CreateObject();
  for (int i = 0; i < nprofile_fields; i++) {
    const Cite *c = target_cite(t, profile_fields[i].name);
    if (!c)
      continue;
    cJSON *s = cJSON_AddObjectToObject(o, c->field);
    cJSON_AddStringToObject(s, "source", c->source);
    cJSON_AddStringToObject(s, "evidence", evidence_name(c->evidence));
  }
  return o;
}

static cJSON *json_target(const TargetProfile *t, bool full) {
  cJSON *o = cJSON_CreateObject();
  if (!full) {
    cJSON_AddStringToObject(o, "name", t->name);
    cJSON_AddStringToObject(o, "chips", t->chips);
    cJSON_AddStringToObject(o, "program", t->program);
    cJSON_AddStringToObject(o, "opset", t->opset);
    return o;
  }
  for (int i = 0; i < nprofile_fields; i++)
    json_add_field(o, t, &profile_fields[i]);
  cJSON_AddItemToObject(o, "sources", json_sources(t));
  cJSON *ops = cJSON_AddArrayToObject(o, "ops");
  for (int i = 0; i < nane_ops; i++)
    if (target_op_allowed(t, ane_ops[i].name))
      cJSON_AddItemToArray(ops, cJSON_CreateString(ane_ops[i].name));
  return o;
}

static cJSON *json_rule(const Rule *r, const TargetProfile *t) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "id", r->id);
  cJSON_AddStringToObject(o, "text", r->text);
  cJSON_AddStringToObject(o, "action", rule_action_name(r->action));
  cJSON_AddStringToObject(o, "action_text", r->action_text);
  cJSON_AddStringToObject(o, "confidence", rule_confidence_name(r->confidence));
  cJSON_AddStringToObject(o, "evidence", evidence_name(r->evidence));
  cJSON_AddStringToObject(o, "source", r->source);
  cJSON_AddStringToObject(o, "check", rule_check_name(r->check));
  cJSON_AddStringToObject(o, "severity", severity_name(target_rule_severity(t, (RuleId)(r - catalog_rules))));
  cJSON_AddStringToObject(o, "check_note", r->check_note);
  json_add_str(o, "retired", r->retired);
  return o;
}

static cJSON *json_finding(const MilFinding *f) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "rule", catalog_rules[f->rule].id);
  cJSON_AddStringToObject(o, "severity", severity_name(f->severity));
  json_add_str(o, "function", f->func);
  if (f->loc.line > 0) {
    cJSON_AddNumberToObject(o, "line", f->loc.line);
    cJSON_AddNumberToObject(o, "col", f->loc.col);
    cJSON_AddNumberToObject(o, "end_line", f->loc.last_line);
    cJSON_AddNumberToObject(o, "end_col", f->loc.last_col);
  }
  cJSON_AddStringToObject(o, "message", f->msg);
  return o;
}

// Rules that mil-check leaves to others (the reader) or cannot decide.
static cJSON *json_unchecked(void) {
  cJSON *a = cJSON_CreateArray();
  for (int i = 0; i < RULE_COUNT; i++) {
    if (catalog_rules[i].check == CHECK_STATIC || catalog_rules[i].retired)
      continue;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "rule", catalog_rules[i].id);
    cJSON_AddStringToObject(o, "check", rule_check_name(catalog_rules[i].check));
    cJSON_AddStringToObject(o, "reason", catalog_rules[i].check_note);
    cJSON_AddItemToArray(a, o);
  }
  return a;
}

// The result of a check; c == NULL when the program did not parse.
static bool json_result(const MilCheckArgs *a, const MilCheck *c, int parse_errors) {
  cJSON *doc = cJSON_CreateObject();
  cJSON_AddStringToObject(doc, "file", a->path);
  cJSON_AddItemToObject(doc, "target", json_target(a->target, false));
  cJSON_AddBoolToObject(doc, "parsed", c != NULL);
  cJSON_AddNumberToObject(doc, "parse_errors", parse_errors);
  cJSON_AddBoolToObject(doc, "accepted", c && c->count[SEV_ERROR] == 0);
  cJSON_AddNumberToObject(doc, "errors", c ? c->count[SEV_ERROR] : 0);
  cJSON_AddNumberToObject(doc, "warnings", c ? c->count[SEV_WARNING] : 0);
  cJSON_AddNumberToObject(doc, "infos", c ? c->count[SEV_INFO] : 0);
  cJSON *list = cJSON_AddArrayToObject(doc, "findings");
  for (int i = 0; c && i < c->n; i++)
    cJSON_AddItemToArray(list, json_finding(&c->findings[i]));
  cJSON_AddItemToObject(doc, "not_checked", json_unchecked());
  return json_print(doc);
}

static bool json_rules(const TargetProfile *t) {
  cJSON *doc = cJSON_CreateObject();
  cJSON_AddItemToObject(doc, "target", json_target(t, true));
  cJSON *list = cJSON_AddArrayToObject(doc, "rules");
  for (int i = 0; i < RULE_COUNT; i++)
    cJSON_AddItemToArray(list, json_rule(&catalog_rules[i], t));
  return json_print(doc);
}

//
// Text
//

static void print_finding(const MilProgram *p, const MilFinding *f) {
  static const char *const level[SEV_COUNT] = {"note", "note", "warning", "error"};
  char msg[1200];
  snprintf(msg, sizeof msg, "[%s] %s", catalog_rules[f->rule].id, f->msg);
  SrcSpan span = {f->loc.line, f->loc.col, f->loc.last_line, f->loc.last_col};
  srcmsg_print(stderr, p->path, p->text, p->len, span, level[f->severity], msg);
}

static void print_summary(const MilCheckArgs *a, const MilCheck *c) {
  const TargetProfile *t = a->target;
  int e = c->count[SEV_ERROR], w = c->count[SEV_WARNING];
  if (e)
    printf("%s: %d error%s, %d warning%s for target %s (program %s, %s)\n", a->path, e,
           e == 1 ? "" : "s", w, w == 1 ? "" : "s", t->name, t->program, t->opset);
  else if (w)
    printf("%s: accepted for target %s (program %s, %s), with %d warning%s\n", a->path, t->name,
           t->program, t->opset, w, w == 1 ? "" : "s");
  else
    printf("%s: accepted for target %s (program %s, %s)\n", a->path, t->name, t->program,
           t->opset);
}

static void print_unchecked(bool verbose) {
  if (verbose) {
    puts("rules mil-check does not decide from the text:");
    for (int i = 0; i < RULE_COUNT; i++)
      if (catalog_rules[i].check != CHECK_STATIC && !catalog_rules[i].retired)
        printf("  %s %-7s %s\n", catalog_rules[i].id, rule_check_name(catalog_rules[i].check),
               catalog_rules[i].check_note);
    return;
  }
  fputs("not checked statically:", stdout);
  for (int i = 0, n = 0; i < RULE_COUNT; i++)
    if (catalog_rules[i].check == CHECK_NONE && !catalog_rules[i].retired)
      printf("%s %s", n++ ? "," : "", catalog_rules[i].id);
  fputs("; partly:", stdout);
  for (int i = 0, n = 0; i < RULE_COUNT; i++)
    if (catalog_rules[i].check == CHECK_PARTIAL && !catalog_rules[i].retired)
      printf("%s %s", n++ ? "," : "", catalog_rules[i].id);
  fputs(" (--verbose says why)\n", stdout);
}

static void print_profile(const TargetProfile *t) {
  printf("target %s (%s): program(%s), opset %s\n", t->name, t->chips, t->program, t->opset);
  printf("  %-23s %-14s %-9s %-9s %s\n", "field", "value", "rules", "evidence", "source");
  for (int i = 0; i < nprofile_fields; i++) {
    const ProfileField *f = &profile_fields[i];
    const Cite *c = target_cite(t, f->name);
    char v[64];
    if (!f->rules)
      continue;
    printf("  %-23s %-14s %-9s %-9s %s\n", f->name, profile_field_text(t, f, v, sizeof v),
           f->rules, c ? evidence_name(c->evidence) : "-", c ? c->source : "-");
  }
}

static void print_rules(const TargetProfile *t) {
  print_profile(t);
  printf("\n%-8s %-8s %-8s %-10s %-9s %s\n", "rule", "action", "check", "confidence", "evidence",
         "text");
  for (int i = 0; i < RULE_COUNT; i++) {
    const Rule *r = &catalog_rules[i];
    const char *check = r->check == CHECK_READER ? "reader"
                        : r->check == CHECK_NONE ? "-"
                                                 : severity_name(target_rule_severity(t, (RuleId)i));
    printf("%-8s %-8s %-8s %-10s %-9s %s%s%s%s\n", r->id, rule_action_name(r->action), check,
           rule_confidence_name(r->confidence), evidence_name(r->evidence), r->text,
           r->retired ? " (retired: " : "", r->retired ? r->retired : "", r->retired ? ")" : "");
    printf("%-47s source: %s\n", "", r->source);
  }
}

//
// The command
//

static int check_program(const MilCheckArgs *a) {
  RtDiag d = {.out = stderr};
  MilProgram *p = mil_read_file(a->path, &d);
  if (!p) {
    if (a->json)
      json_result(a, NULL, d.errors);
    return EXIT_USER;
  }
  MilCheck c = {0};
  milcheck_run(&c, p, a->target);
  bool ok = true;
  if (a->json) {
    ok = json_result(a, &c, 0);
  } else {
    for (int i = 0; i < c.n; i++)
      print_finding(p, &c.findings[i]);
    print_summary(a, &c);
    print_unchecked(a->verbose);
  }
  int rc = c.count[SEV_ERROR] || !ok ? EXIT_USER : 0;
  milcheck_free(&c);
  mil_free(p);
  return rc;
}

static int run(MilCheckArgs *a) {
  if (!a->list_rules)
    return check_program(a);
  if (a->json)
    return json_rules(a->target) ? 0 : EXIT_USER;
  print_rules(a->target);
  return 0;
}

int cmd_mil_check(int argc, char **argv) {
  MilCheckArgs a = {0};
  int rc = parse_args(&a, argc, argv);
  if (rc)
    return rc < 0 ? 0 : rc;
  Arena arena = {0};
  RtDiag d = {.out = stderr};
  a.target = a.profile ? target_profile_load(a.profile, &arena, &d)
             : a.target ? a.target
                        : target_default();
  rc = a.target ? run(&a) : EXIT_USER;
  arena_free(&arena);
  return rc;
}
