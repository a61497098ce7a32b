// profile.c — target profiles as data outside the binary: a JSON file that
// names a built-in profile ("base") and sets fields of TargetProfile by name
// over it (`anec mil-check --profile FILE.json`). Every field is validated
// against profile_fields (catalog.c); each error names the file and the
// field. Also the generic accessors of a profile's fields by name.
#include "target.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum { PROFILE_MAX_BYTES = 1 << 20, PROFILE_MAX_STR = 200 };

//
// Fields by name
//

static const void *field_ptr(const TargetProfile *t, const ProfileField *f) {
  return (const char *)t + f->off;
}

int64_t profile_field_int(const TargetProfile *t, const ProfileField *f) {
  const void *p = field_ptr(t, f);
  switch (f->kind) {
  case PF_BOOL: return *(const bool *)p;
  case PF_I64: return *(const int64_t *)p;
  case PF_INT:
  case PF_POW2: return *(const int *)p;
  case PF_INPUTS: return *(const InputsMode *)p;
  default: return 0;
  }
}

const char *profile_field_str(const TargetProfile *t, const ProfileField *f) {
  bool str = f->kind == PF_STR || f->kind == PF_VERSION || f->kind == PF_OPSET;
  return str ? *(const char *const *)field_ptr(t, f) : NULL;
}

const char *profile_field_text(const TargetProfile *t, const ProfileField *f, char *buf,
                               size_t n) {
  const char *s = profile_field_str(t, f);
  int64_t v = profile_field_int(t, f);
  if (s)
    snprintf(buf, n, "%s", s);
  else if (f->kind == PF_BOOL)
    snprintf(buf, n, "%s", v ? "true" : "false");
  else if (f->kind == PF_INPUTS)
    snprintf(buf, n, "%s", v == INPUTS_SINGLE ? "single" : "multi");
  else
    snprintf(buf, n, "%lld", (long long)v);
  return buf;
}

//
// The loader
//

typedef struct Loader {
  const char *path;
  RtDiag *d;
  Arena *a;
  TargetProfile *t;
  Cite *cites; // the base's, then one per field the file sets
  int ncites;
} Loader;

ANERT_PRINTF(3, 4)
static bool field_error(Loader *l, const char *field, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  rt_error_file(l->d, l->path, "field '%s': %s", field, msg);
  return false;
}

// A JSON value as written, shortened, for messages.
static const char *json_text(Loader *l, const cJSON *v) {
  char *s = cJSON_PrintUnformatted(v);
  const char *out = s && strlen(s) > 40 ? arena_printf(l->a, "%.37s...", s)
                                        : arena_strdup(l->a, s ? s : "?");
  cJSON_free(s);
  return out;
}

static bool is_version(const char *s) {
  size_t a = strspn(s, "0123456789"), b = a && s[a] == '.' ? strspn(s + a + 1, "0123456789") : 0;
  return a && a <= 3 && b && b <= 3 && !s[a + 1 + b];
}

static bool printable(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      return false;
  return true;
}

static bool set_string(Loader *l, const ProfileField *f, const cJSON *v) {
  const char *s = cJSON_IsString(v) ? v->valuestring : NULL;
  if (!s || !*s || strlen(s) > PROFILE_MAX_STR || !printable(s))
    return field_error(l, f->name, "expected a non-empty string of at most %d printable "
                       "characters, got %s", PROFILE_MAX_STR, json_text(l, v));
  if (f->kind == PF_VERSION && !is_version(s))
    return field_error(l, f->name, "expected a MIL program version such as \"1.3\", got %s",
                       json_text(l, v));
  if (f->kind == PF_OPSET && !opset_number(s))
    return field_error(l, f->name, "expected an opset such as \"ios18\", got %s",
                       json_text(l, v));
  *(const char **)((char *)l->t + f->off) = arena_strdup(l->a, s);
  return true;
}

static bool set_number(Loader *l, const ProfileField *f, const cJSON *v) {
  double x = cJSON_IsNumber(v) ? v->valuedouble : NAN;
  bool ok = x == floor(x) && x >= (double)f->lo && x <= (double)f->hi;
  int64_t n = ok ? (int64_t)x : 0;
  if (ok && f->kind == PF_POW2)
    ok = (n & (n - 1)) == 0;
  if (!ok)
    return field_error(l, f->name, "expected an integer%s in [%lld, %lld], got %s",
                       f->kind == PF_POW2 ? " power of 2" : "", (long long)f->lo,
                       (long long)f->hi, json_text(l, v));
  void *p = (char *)l->t + f->off;
  if (f->kind == PF_I64)
    *(int64_t *)p = n;
  else
    *(int *)p = (int)n;
  return true;
}

static bool set_field(Loader *l, const ProfileField *f, const cJSON *v) {
  void *p = (char *)l->t + f->off;
  switch (f->kind) {
  case PF_BOOL:
    if (!cJSON_IsBool(v))
      return field_error(l, f->name, "expected true or false, got %s", json_text(l, v));
    *(bool *)p = cJSON_IsTrue(v);
    return true;
  case PF_INPUTS: {
    const char *s = cJSON_IsString(v) ? v->valuestring : "";
    if (strcmp(s, "single") && strcmp(s, "multi"))
      return field_error(l, f->name, "expected \"single\" or \"multi\", got %s", json_text(l, v));
    *(InputsMode *)p = !strcmp(s, "single") ? INPUTS_SINGLE : INPUTS_MULTI;
    return true;
  }
  case PF_I64:
  case PF_INT:
  case PF_POW2: return set_number(l, f, v);
  default: return set_string(l, f, v);
  }
}

// The citation of `field`, replaced or added.
static void set_cite(Loader *l, const char *field, const char *source, Evidence ev) {
  int i = 0;
  while (i < l->ncites && strcmp(l->cites[i].field, field))
    i++;
  l->cites[i] = (Cite){field, source, ev};
  l->ncites += i == l->ncites;
}

// "sources": {"FIELD": {"source": "...", "evidence": "reported"}}, for
// fields the file sets.
static bool set_source(Loader *l, const cJSON *src, const cJSON *doc) {
  const char *name = src->string, *field = arena_printf(l->a, "sources.%s", name);
  const cJSON *s = cJSON_GetObjectItemCaseSensitive(src, "source");
  const cJSON *e = cJSON_GetObjectItemCaseSensitive(src, "evidence");
  int ev = cJSON_IsString(e) ? evidence_lookup(e->valuestring) : -1;
  if (!profile_field(name) || !cJSON_GetObjectItemCaseSensitive(doc, name))
    return field_error(l, field, "cites a field the file does not set");
  if (!cJSON_IsObject(src) || cJSON_GetArraySize(src) != 2 || !cJSON_IsString(s) ||
      !*s->valuestring || strlen(s->valuestring) > PROFILE_MAX_STR || !printable(s->valuestring))
    return field_error(l, field, "expected {\"source\": \"...\", \"evidence\": \"...\"}, got %s",
                       json_text(l, src));
  if (ev < 0 || ev == EV_PROFILE)
    return field_error(l, field, "evidence %s is not one of \"source\", \"reported\", "
                       "\"inferred\", \"disputed\"", json_text(l, e));
  set_cite(l, profile_field(name)->name, arena_strdup(l->a, s->valuestring), (Evidence)ev);
  return true;
}

static bool set_sources(Loader *l, const cJSON *sources, const cJSON *doc) {
  if (!cJSON_IsObject(sources))
    return field_error(l, "sources", "expected an object of citations, got %s",
                       json_text(l, sources));
  bool ok = true;
  for (const cJSON *s = sources->child; s; s = s->next)
    ok &= set_source(l, s, doc);
  return ok;
}

// The built-in profile the file starts from.
static const TargetProfile *load_base(Loader *l, const cJSON *doc) {
  const cJSON *b = cJSON_GetObjectItemCaseSensitive(doc, "base");
  const TargetProfile *base = cJSON_IsString(b) ? target_find(b->valuestring) : NULL;
  char known[128];
  target_names(known, sizeof known);
  if (!b)
    field_error(l, "base", "missing: name the built-in profile this one changes (%s)", known);
  else if (!base)
    field_error(l, "base", "unknown target %s (known: %s)", json_text(l, b), known);
  return base;
}

static bool unique_keys(Loader *l, const cJSON *obj, const char *prefix) {
  for (const cJSON *a = obj->child; a; a = a->next)
    for (const cJSON *b = obj->child; b != a; b = b->next)
      if (!strcmp(a->string, b->string))
        return field_error(l, arena_printf(l->a, "%s%s", prefix, a->string), "given twice");
  const cJSON *src = cJSON_GetObjectItemCaseSensitive(obj, "sources");
  return !*prefix && cJSON_IsObject(src) ? unique_keys(l, src, "sources.") : true;
}

static bool set_fields(Loader *l, const cJSON *doc) {
  bool ok = true;
  for (const cJSON *v = doc->child; v; v = v->next) {
    const ProfileField *f = profile_field(v->string);
    if (!strcmp(v->string, "base") || !strcmp(v->string, "sources"))
      continue;
    if (!f) {
      ok = field_error(l, v->string, "unknown (a profile sets fields of TargetProfile by name; "
                       "`anec mil-check --list-rules --json` lists them)");
      continue;
    }
    if (!set_field(l, f, v)) {
      ok = false;
      continue;
    }
    set_cite(l, f->name, l->path, EV_PROFILE);
  }
  return ok;
}

static bool check_name(Loader *l, const cJSON *doc, const TargetProfile *base) {
  const TargetProfile *same = target_find(l->t->name);
  if (!cJSON_GetObjectItemCaseSensitive(doc, "name") || !same || same == base)
    return true;
  return field_error(l, "name", "'%s' is another built-in profile; leave name out or choose "
                     "another", l->t->name);
}

static const TargetProfile *load_doc(Loader *l, const cJSON *doc) {
  if (!cJSON_IsObject(doc)) {
    rt_error_file(l->d, l->path, "a profile is a JSON object, got %s", json_text(l, doc));
    return NULL;
  }
  const TargetProfile *base = load_base(l, doc);
  if (!unique_keys(l, doc, "") || !base)
    return NULL;
  *l->t = *base;
  int n = 0;
  while (base->cites && base->cites[n].field)
    n++;
  l->cites = arena_alloc(l->a, (size_t)(n + nprofile_fields + 1) * sizeof *l->cites);
  memcpy(l->cites, base->cites, (size_t)n * sizeof *l->cites);
  l->ncites = n;
  bool ok = set_fields(l, doc);
  const cJSON *sources = cJSON_GetObjectItemCaseSensitive(doc, "sources");
  ok = (!sources || set_sources(l, sources, doc)) && ok;
  ok = check_name(l, doc, base) && ok;
  l->t->cites = l->cites;
  return ok ? l->t : NULL;
}

// Line and column of `at` in text.
static void text_pos(const char *text, const char *at, int *line, int *col) {
  *line = 1, *col = 1;
  for (const char *p = text; p < at; p++) {
    *line += *p == '\n';
    *col = *p == '\n' ? 1 : *col + 1;
  }
}

const TargetProfile *target_profile_load(const char *path, Arena *a, RtDiag *d) {
  size_t n;
  char *text = (char *)rt_read_file_max(path, PROFILE_MAX_BYTES, &n, d);
  if (!text)
    return NULL;
  const char *end = NULL;
  cJSON *doc = strlen(text) == n ? cJSON_ParseWithLengthOpts(text, n + 1, &end, true) : NULL;
  const TargetProfile *t = NULL;
  if (!doc) {
    int line, col;
    text_pos(text, end && end >= text && end <= text + n ? end : text + strlen(text), &line, &col);
    rt_error_file(d, path, "line %d, column %d: not valid JSON", line, col);
  } else {
    Loader l = {.path = arena_strdup(a, path), .d = d, .a = a,
                .t = arena_alloc(a, sizeof(TargetProfile))};
    t = load_doc(&l, doc);
  }
  cJSON_Delete(doc);
  free(text);
  return t;
}
