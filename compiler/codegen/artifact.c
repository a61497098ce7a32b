// artifact.c — the artifact directory `anec compile -o DIR` writes:
// kernels/NAME/model.mil and kernels/NAME/weights/*.bin per kernel (the
// kernel's directory is its @model_path, as an ANE loader's), manifest.json
// (kernels, I/O, CPU ops, schedule, buffers, FLOPs, compiles). Built in a
// temporary sibling directory and renamed into place (swapped with an
// earlier artifact directory): complete or absent, never half-replaced.
#include "codegen.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void rm_tree(const char *path) {
  struct stat st;
  DIR *dir = lstat(path, &st) == 0 && S_ISDIR(st.st_mode) ? opendir(path) : NULL;
  for (struct dirent *e; dir && (e = readdir(dir));) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
      continue;
    char sub[8400];
    snprintf(sub, sizeof sub, "%.4096s/%.256s", path, e->d_name);
    rm_tree(sub);
  }
  if (dir)
    closedir(dir);
  remove(path);
}

static bool make_dir(const char *path, Diag *d) {
  if (mkdir(path, 0755) == 0 || errno == EEXIST)
    return true;
  diag_error(d, loc_none(), "cannot create directory '%s': %s", path, strerror(errno));
  return false;
}

static bool write_text(const char *path, const char *text, size_t len, Diag *d) {
  FILE *f = fopen(path, "wb");
  bool ok = f && fwrite(text, 1, len, f) == len;
  ok = f && fclose(f) == 0 && ok;
  if (!ok)
    diag_error(d, loc_none(), "cannot write '%s': %s", path, strerror(errno));
  return ok;
}

static bool write_weights(Arena *a, const char *kdir, const KernelMil *km, Diag *d) {
  for (int i = 0; i < km->nfiles; i++) {
    if (!make_dir(arena_printf(a, "%s/weights", kdir), d))
      return false;
    RtDiag rd = {.out = stderr};
    const char *path = arena_printf(a, "%s/%s", kdir, km->files[i].path);
    if (!milblob_write(path, km->files[i].blobs, km->files[i].nblobs, NULL, &rd))
      return false;
  }
  return true;
}

//
// manifest.json
//
cJSON *json_dims(int rank, const int64_t *dims) {
  cJSON *a = cJSON_CreateArray();
  for (int i = 0; i < rank; i++)
    cJSON_AddItemToArray(a, cJSON_CreateNumber((double)dims[i]));
  return a;
}

static const char *value_name(Arena *a, const Node *n) {
  return n->name ? n->name : arena_printf(a, "%%%d", n->id);
}

static cJSON *json_io(const Graph *g, int ki, const char *io_name, const Node *n, bool input) {
  Arena *a = g->arena;
  cJSON *o = cJSON_CreateObject();
  int64_t io[4];
  kernel_io_shape(g, ki, n, input, io);
  cJSON_AddStringToObject(o, "name", io_name);
  cJSON_AddStringToObject(o, "value", value_name(a, n));
  cJSON_AddItemToObject(o, "shape", json_dims(4, io));
  cJSON_AddStringToObject(o, "dtype", "fp16");
  cJSON_AddItemToObject(o, "logical_shape", json_dims(n->shape.rank, n->shape.dims));
  cJSON_AddStringToObject(o, "layout", n->layout == LAYOUT_TL ? "token-last" : "flat");
  return o;
}

static const char *const pack_modes[] = {"transposed", "as-is", "vector"};

// Dynamic weights: where each param goes in the kernel's input.
static cJSON *json_packing(const Graph *g, int ki) {
  Packing pk;
  kernel_packing(g, ki, &pk);
  cJSON *arr = cJSON_CreateArray();
  for (int i = 0; i < pk.n; i++) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "param", pk.packs[i].param->name);
    cJSON_AddStringToObject(o, "mode", pack_modes[pk.packs[i].mode]);
    cJSON_AddNumberToObject(o, "row", (double)pk.packs[i].row);
    cJSON_AddNumberToObject(o, "column", (double)pk.packs[i].col);
    cJSON_AddNumberToObject(o, "columns", (double)pk.packs[i].cols);
    cJSON_AddNumberToObject(o, "rows", (double)pk.packs[i].rows);
    cJSON_AddItemToArray(arr, o);
  }
  return arr;
}

// Kernel ki, whose program and weights are those of kernel `file` (itself or
// an identical earlier one).
static cJSON *json_kernel(const Graph *g, int ki, const KernelMil *km, const char *file) {
  Arena *a = g->arena;
  const Kernel *k = &g->plan->kernels[ki];
  cJSON *o = cJSON_CreateObject(), *ins = cJSON_CreateArray(), *outs = cJSON_CreateArray();
  cJSON *files = cJSON_CreateArray();
  cJSON_AddStringToObject(o, "name", k->name);
  cJSON_AddStringToObject(o, "mil", arena_printf(a, "kernels/%s/model.mil", file));
  for (int i = 0; i < km->nfiles; i++)
    cJSON_AddItemToArray(files, cJSON_CreateString(
                                    arena_printf(a, "kernels/%s/%s", file, km->files[i].path)));
  cJSON_AddItemToObject(o, "weights", files);
  for (int i = 0; i < k->ninputs; i++)
    cJSON_AddItemToArray(ins, json_io(g, ki, km->in_names[i], k->inputs[i], true));
  if (g->dynamic_weights)
    cJSON_AddItemToObject(o, "packing", json_packing(g, ki));
  for (int i = 0; i < k->noutputs; i++)
    cJSON_AddItemToArray(outs, json_io(g, ki, km->out_names[i], k->outputs[i], false));
  cJSON_AddItemToObject(o, "inputs", ins);
  cJSON_AddItemToObject(o, "outputs", outs);
  cJSON_AddNumberToObject(o, "ops", k->nnodes);
  cJSON_AddNumberToObject(o, "flops", (double)k->flops);
  cJSON_AddNumberToObject(o, "weight_bytes", (double)k->weight_bytes);
  cJSON_AddNumberToObject(o, "io_bytes", (double)k->io_bytes);
  cJSON_AddNumberToObject(o, "sram_bytes", (double)k->sram_bytes);
  return o;
}

static cJSON *json_cpu_op(Arena *a, const Node *n) {
  cJSON *o = cJSON_CreateObject(), *ins = cJSON_CreateArray();
  cJSON_AddStringToObject(o, "value", value_name(a, n));
  cJSON_AddStringToObject(o, "op", op_info[n->op].name);
  for (int i = 0; i < n->nin; i++)
    cJSON_AddItemToArray(ins, cJSON_CreateString(value_name(a, n->in[i])));
  cJSON_AddItemToObject(o, "inputs", ins);
  cJSON_AddItemToObject(o, "shape", json_dims(n->shape.rank, n->shape.dims));
  cJSON_AddStringToObject(o, "dtype", dtype_name(n->dtype));
  cJSON_AddStringToObject(o, "rule", node_rule(n) ? node_rule(n)->id : "?");
  cJSON_AddStringToObject(o, "reason", node_rule(n) ? node_rule(n)->text : "");
  return o;
}

static cJSON *json_values(Arena *a, Node **v, const char **names, int n) {
  cJSON *arr = cJSON_CreateArray();
  for (int i = 0; i < n; i++) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", names ? names[i] : v[i]->name);
    cJSON_AddStringToObject(o, "value", value_name(a, v[i]));
    cJSON_AddItemToObject(o, "shape", json_dims(v[i]->shape.rank, v[i]->shape.dims));
    cJSON_AddStringToObject(o, "dtype", dtype_name(v[i]->dtype));
    cJSON_AddItemToArray(arr, o);
  }
  return arr;
}

static cJSON *json_schedule(Arena *a, const Plan *pl) {
  cJSON *arr = cJSON_CreateArray();
  for (int s = 0; s < pl->nsteps; s++) {
    cJSON *o = cJSON_CreateObject();
    if (pl->steps[s].cpu)
      cJSON_AddStringToObject(o, "cpu", value_name(a, pl->steps[s].cpu));
    else
      cJSON_AddStringToObject(o, "kernel", pl->kernels[pl->steps[s].kernel].name);
    cJSON_AddItemToArray(arr, o);
  }
  return arr;
}

static cJSON *json_buffers(Arena *a, const Plan *pl) {
  cJSON *arr = cJSON_CreateArray();
  for (int i = 0; i < pl->nbufs; i++) {
    const PlanBuf *b = &pl->bufs[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "value", value_name(a, b->value));
    cJSON_AddNumberToObject(o, "first_step", b->first);
    cJSON_AddNumberToObject(o, "last_step", b->last);
    cJSON_AddNumberToObject(o, "offset", (double)b->offset);
    cJSON_AddNumberToObject(o, "bytes", (double)b->bytes);
    cJSON_AddItemToArray(arr, o);
  }
  return arr;
}

static Node **graph_inputs(const Graph *g, int *n) {
  Node **v = arena_alloc(g->arena, sizeof *v * (size_t)(g->nnodes + 1));
  *n = 0;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == OP_INPUT)
      v[(*n)++] = g->nodes[i];
  return v;
}

static char *manifest_text(const Graph *g, const KernelMil *kms, const int *shares) {
  Arena *a = g->arena;
  const Plan *pl = g->plan;
  cJSON *m = cJSON_CreateObject(), *ks = cJSON_CreateArray(), *cpu = cJSON_CreateArray();
  cJSON_AddStringToObject(m, "anec_version", ANEC_VERSION);
  cJSON_AddStringToObject(m, "model", g->model);
  cJSON_AddStringToObject(m, "source", g->file);
  cJSON_AddStringToObject(m, "target", g->target->name);
  cJSON_AddStringToObject(m, "weights", g->dynamic_weights ? "inputs" : "baked");
  int nin;
  Node **ins = graph_inputs(g, &nin);
  cJSON_AddItemToObject(m, "inputs", json_values(a, ins, NULL, nin));
  cJSON_AddItemToObject(m, "outputs", json_values(a, g->outputs, g->output_names, g->noutputs));
  int compiles = 0;
  for (int k = 0; k < pl->nkernels; k++) {
    cJSON_AddItemToArray(ks, json_kernel(g, k, &kms[k], pl->kernels[shares[k]].name));
    compiles += shares[k] == k;
  }
  cJSON_AddItemToObject(m, "kernels", ks);
  for (int s = 0; s < pl->nsteps; s++)
    if (pl->steps[s].cpu)
      cJSON_AddItemToArray(cpu, json_cpu_op(a, pl->steps[s].cpu));
  cJSON_AddItemToObject(m, "cpu_ops", cpu);
  cJSON_AddItemToObject(m, "schedule", json_schedule(a, pl));
  cJSON_AddItemToObject(m, "buffers", json_buffers(a, pl));
  cJSON_AddNumberToObject(m, "arena_bytes", (double)pl->arena_bytes);
  int64_t flops = 0;
  for (int k = 0; k < pl->nkernels; k++)
    flops += pl->kernels[k].flops;
  for (int s = 0; s < pl->nsteps; s++)
    flops += pl->steps[s].cpu ? node_flops(pl->steps[s].cpu) : 0;
  cJSON_AddNumberToObject(m, "flops_per_forward", (double)flops);
  cJSON_AddNumberToObject(m, "dispatches_per_forward", pl->nkernels);
  cJSON_AddNumberToObject(m, "compiles", compiles);
  char *text = cJSON_Print(m);
  cJSON_Delete(m);
  return text;
}

//
// The directory
//
static bool same_blobs(const KernelMil *a, const KernelMil *b) {
  if (a->nfiles != b->nfiles)
    return false;
  for (int f = 0; f < a->nfiles; f++) {
    const WeightFile *x = &a->files[f], *y = &b->files[f];
    if (x->nblobs != y->nblobs || strcmp(x->path, y->path))
      return false;
    for (int i = 0; i < x->nblobs; i++)
      if (x->blobs[i].size != y->blobs[i].size ||
          memcmp(x->blobs[i].data, y->blobs[i].data, (size_t)x->blobs[i].size))
        return false;
  }
  return true;
}

// Whether kernels a and b are the same text and weights (their BLOBFILE
// paths name no kernel): then one compiled program serves both.
static bool same_kernel(const KernelMil *a, const KernelMil *b) {
  return a->len == b->len && !memcmp(a->text, b->text, a->len) && same_blobs(a, b);
}

// The first kernel before k whose program k can use, or k.
static int share_of(const KernelMil *kms, const int *shares, int k) {
  for (int j = 0; j < k; j++)
    if (shares[j] == j && same_kernel(&kms[j], &kms[k]))
      return j;
  return k;
}

// ANE-P02: the programs a run compiles against the target's budget per process.
static bool within_budget(const Graph *g, int compiles, Diag *d) {
  const Rule *r = &catalog_rules[RULE_P02];
  if (compiles > g->target->compile_budget)
    diag_error(d, loc_none(), "[%s] the plan needs %d compiled programs, over target %s's "
               "budget of %d per process", r->id, compiles, g->target->name,
               g->target->compile_budget);
  return compiles <= g->target->compile_budget;
}

int artifact_compiles(const Graph *g, const ParamSet *ps, int *shares, Diag *d) {
  int n = g->plan->nkernels, compiles = 0;
  KernelMil *kms = arena_alloc(g->arena, sizeof *kms * (size_t)(n + 1));
  bool ok = true;
  for (int k = 0; k < n && ok; k++) {
    ok = emit_kernel(g->arena, g, k, ps, false, &kms[k], d);
    shares[k] = ok ? share_of(kms, shares, k) : k;
    compiles += ok && shares[k] == k;
  }
  for (int k = 0; k < n; k++)
    free(kms[k].text);
  return ok ? compiles : -1;
}

//
// The catalog check: each fp16 kernel's MIL, as emitted, against the
// target's catalog (milcheck.c), before its files are written
//

// Whether name is `prefix` followed by decimal digits only (in00, out01).
static bool numbered(const char *name, const char *prefix) {
  size_t n = strlen(prefix);
  if (strncmp(name, prefix, n) || !name[n])
    return false;
  return strspn(name + n, "0123456789") == strlen(name + n);
}

// The IR values the kernel's MIL variable `name` holds (at most max, into
// out): opN_OP is the kernel's node N (emit_kernel's names), outNN and inNN
// are the values in that output or input surface. 0 for a helper value (a
// constant, a reshape, a slice of a surface).
static int var_values(const Graph *g, int ki, const KernelMil *km, const char *name,
                      const Node **out, int max) {
  const Kernel *k = &g->plan->kernels[ki];
  int n = 0;
  if (numbered(name, "out") || numbered(name, "in")) {
    bool input = name[0] == 'i';
    for (int i = 0; i < (input ? k->ninputs : k->noutputs) && n < max; i++)
      if (!strcmp(input ? km->in_names[i] : km->out_names[i], name))
        out[n++] = input ? k->inputs[i] : k->outputs[i];
    return n;
  }
  char *end;
  long i = strncmp(name, "op", 2) ? -1 : strtol(name + 2, &end, 10);
  if (i < 0 || i >= k->nnodes || name[2] < '0' || name[2] > '9' || *end != '_')
    return 0;
  const char *op = op_info[k->nodes[i]->op].name;
  if (strcmp(end + 1, op + (*op == '%')))
    return 0;
  out[0] = k->nodes[i];
  return max > 0;
}

static bool binding_uses(const MilBinding *b, int var) {
  if (b->kind == MIL_B_REF)
    return b->var == var;
  for (int i = 0; b->kind == MIL_B_TUPLE && i < b->nitems; i++)
    if (binding_uses(&b->items[i], var))
      return true;
  return false;
}

static void binding_refs(const MilBinding *b, int *queue, int *n, bool *seen) {
  if (b->kind == MIL_B_REF && b->var >= 0 && !seen[b->var])
    seen[b->var] = true, queue[(*n)++] = b->var;
  for (int i = 0; b->kind == MIL_B_TUPLE && i < b->nitems; i++)
    binding_refs(&b->items[i], queue, n, seen);
}

// The nearest variable from v that holds IR values: v itself, else what is
// computed from it (*how "goes into"), else what it is computed from (*how
// "comes from"); -1 if none.
static int valued_var(const Graph *g, int ki, const KernelMil *km, const MilFunc *f, int v,
                      const char **how) {
  const Node *dummy;
  int *queue = arena_alloc(g->arena, sizeof(int) * (size_t)(f->nvars + 1));
  bool *seen = arena_alloc(g->arena, (size_t)f->nvars + 1);
  for (int forward = 1; forward >= 0; forward--) {
    memset(seen, 0, (size_t)f->nvars + 1);
    int n = 0;
    queue[n++] = v, seen[v] = true;
    for (int q = 0; q < n; q++) {
      int x = queue[q];
      *how = x == v ? "holds" : forward ? "goes into" : "comes from";
      if (var_values(g, ki, km, f->vars[x].name, &dummy, 1))
        return x;
      for (int o = forward ? f->vars[x].op + 1 : f->vars[x].op; o >= 0 && o < f->nops;
           o = forward ? o + 1 : -1) {
        const MilOp *op = &f->ops[o];
        bool uses = false;
        for (int a = 0; forward && a < op->nargs && !uses; a++)
          uses = binding_uses(&op->args[a].b, x);
        for (int j = 0; uses && j < op->noutputs; j++)
          if (!seen[op->outputs[j]])
            seen[op->outputs[j]] = true, queue[n++] = op->outputs[j];
        for (int a = 0; !forward && a < op->nargs; a++)
          binding_refs(&op->args[a].b, queue, &n, seen);
      }
    }
  }
  return -1;
}

// The variable a finding at loc is about: the one declared there, else the
// (first) output of the op on that line, else the input declared last
// before it on that line; -1 for the program or function as a whole.
static int finding_var(const MilFunc *f, MilLoc loc) {
  for (int i = 0; loc.line > 0 && i < f->nvars; i++)
    if (f->vars[i].loc.line == loc.line && f->vars[i].loc.col <= loc.col &&
        loc.col <= f->vars[i].loc.last_col)
      return i;
  for (int i = 0; loc.line > 0 && i < f->nops; i++)
    if (f->ops[i].loc.line == loc.line && f->ops[i].noutputs)
      return f->ops[i].outputs[0];
  int best = -1;
  for (int i = 0; loc.line > 0 && i < f->ninputs; i++) {
    const MilVar *v = &f->vars[f->inputs[i]];
    if (v->loc.line == loc.line && v->loc.col <= loc.col)
      best = f->inputs[i];
  }
  return best;
}

static bool same_site(SrcLoc a, SrcLoc b) {
  return a.file == b.file && a.first_line == b.first_line && a.first_column == b.first_column;
}

// Notes at the .anet source of the values the finding is about.
static void note_values(const Graph *g, int ki, const KernelMil *km, const MilProgram *p,
                        const MilFinding *f, Diag *d) {
  const MilFunc *fn = f->func ? mil_func(p, f->func) : p->nfuncs ? &p->funcs[0] : NULL;
  int var = fn ? finding_var(fn, f->loc) : -1;
  const char *how = "holds";
  int v = var >= 0 ? valued_var(g, ki, km, fn, var, &how) : -1;
  if (v < 0)
    return;
  const char *about = fn->vars[var].name;
  enum { MAX_NOTES = 4 };
  const Kernel *k = &g->plan->kernels[ki];
  int cap = k->ninputs + k->noutputs + 1;
  const Node **vals = arena_alloc(g->arena, sizeof *vals * (size_t)cap);
  int n = var_values(g, ki, km, fn->vars[v].name, vals, cap), shown = 0, more = 0;
  for (int i = 0; i < n; i++) {
    bool dup = vals[i]->site.file < 0 || vals[i]->site.first_line <= 0;
    for (int j = 0; j < i && !dup; j++)
      dup = same_site(vals[j]->site, vals[i]->site);
    if (dup)
      continue;
    if (shown == MAX_NOTES) {
      more++;
      continue;
    }
    const Node *x = vals[i];
    const char *op = op_info[x->op].name, *shape = shape_str(g->arena, &x->shape);
    if (x->op == OP_INPUT || x->op == OP_PARAM)
      diag_note(d, x->site, "'%s' %s %s %s (%s%s) declared here", about, how, op, x->name,
                dtype_name(x->dtype), shape);
    else // as the IR dump and manifest.json name it
      diag_note(d, x->site, "'%s' %s %%%d (%s, %s%s) from this expression", about, how, x->id,
                op + (*op == '%'), dtype_name(x->dtype), shape);
    shown++;
  }
  if (more)
    diag_note(d, loc_none(), "'%s' %s %d more value%s", about, how, more, more == 1 ? "" : "s");
}

// Kernel ki's check: its errors reported; false if there are any.
static bool kernel_check(const Graph *g, int ki, const KernelMil *km, Diag *d) {
  const char *name = g->plan->kernels[ki].name;
  RtDiag rd = {.out = d->out};
  // "/dev/null" as @model_path: the weight files are not written yet, so
  // their bytes are not checked (the emitter writes them; their metadata
  // is checked in the text)
  MilProgram *p = mil_read_text(arena_printf(g->arena, "kernels/%s/model.mil", name), km->text,
                                km->len, "/dev/null", &rd);
  if (!p) {
    diag_error(d, loc_none(), "kernel %s: the emitted MIL does not parse (an anec bug)", name);
    return false;
  }
  MilCheck c = {0};
  milcheck_run(&c, p, g->target);
  for (int i = 0; i < c.n; i++) {
    const MilFinding *f = &c.findings[i];
    if (f->severity != SEV_ERROR)
      continue; // warnings: anec mil-check shows them
    diag_error(d, loc_none(), "kernel %s: [%s] %s", name, catalog_rules[f->rule].id, f->msg);
    note_values(g, ki, km, p, f, d);
  }
  bool ok = c.count[SEV_ERROR] == 0;
  milcheck_free(&c);
  mil_free(p);
  return ok;
}

bool artifact_check(const Graph *g, const KernelMil *kms, const int *shares, Diag *d) {
  int rejected = 0;
  for (int k = 0; k < g->plan->nkernels && !g->no_check && !(rejected && d->stop); k++)
    if ((!shares || shares[k] == k) && !kernel_check(g, k, &kms[k], d))
      rejected++;
  if (rejected)
    diag_note(d, loc_none(), "%d kernel%s of '%s' fail%s the catalog of target %s; --no-check "
              "skips the check", rejected, rejected == 1 ? "" : "s", g->model,
              rejected == 1 ? "s" : "", g->target->name);
  return rejected == 0;
}

// Emits every kernel, checks the fp16 ones (artifact_check), then writes
// their files: none if a kernel is rejected.
static bool write_kernels(const Graph *g, const ParamSet *ps, const char *dir, bool fp32,
                          KernelMil *kms, int *shares, Diag *d) {
  Arena *a = g->arena;
  int compiles = 0;
  for (int k = 0; k < g->plan->nkernels; k++) {
    if (!emit_kernel(a, g, k, ps, fp32, &kms[k], d))
      return false;
    shares[k] = share_of(kms, shares, k);
    compiles += shares[k] == k;
  }
  if ((!fp32 && !artifact_check(g, kms, shares, d)) ||
      !make_dir(arena_printf(a, "%s/kernels", dir), d))
    return false;
  for (int k = 0; k < g->plan->nkernels; k++) {
    const char *name = g->plan->kernels[k].name;
    const char *kdir = arena_printf(a, "%s/kernels/%s", dir, name);
    if (shares[k] == k &&
        (!make_dir(kdir, d) ||
         !write_text(arena_printf(a, "%s/model.mil", kdir), kms[k].text, kms[k].len, d) ||
         !write_weights(a, kdir, &kms[k], d)))
      return false;
  }
  return within_budget(g, compiles, d);
}

static bool write_all(const Graph *g, const ParamSet *ps, const char *dir, bool fp32,
                      const ArtifactExtras *x, int *shares, Diag *d) {
  KernelMil *kms = arena_alloc(g->arena, sizeof *kms * (size_t)(g->plan->nkernels + 1));
  bool ok = write_kernels(g, ps, dir, fp32, kms, shares, d);
  for (int k = 0; k < g->plan->nkernels; k++)
    free(kms[k].text);
  if (ok) {
    char *text = manifest_text(g, kms, shares);
    ok = text && write_text(arena_printf(g->arena, "%s/manifest.json", dir), text, strlen(text), d);
    free(text);
  }
  for (int i = 0; ok && x && i < x->n; i++)
    ok = write_text(arena_printf(g->arena, "%s/%s", dir, x->names[i]), x->texts[i],
                    strlen(x->texts[i]), d);
  return ok;
}

//
// Replacing DIR. Our temporaries next to it are DIR.tmp.PID.XXXXXX (the new
// artifact while it is written; after a swap, the old one while it is
// deleted) and DIR.old.PID.XXXXXX (the old one, renamed aside where the OS
// cannot swap two directories in one step). DIR itself is at every moment
// the complete old artifact or the complete new one (on Linux; elsewhere it
// is briefly absent between the two renames).
//

// Whether `rest` (after "DIR.tmp." or "DIR.old.") is our "PID.XXXXXX", or
// the "XXXXXX" of anec before the PID was in the name; *pid: the PID or 0.
static bool our_suffix(const char *rest, long *pid) {
  *pid = 0;
  if (strlen(rest) == 6 && !strchr(rest, '.'))
    return true;
  char *end;
  errno = 0;
  long v = strtol(rest, &end, 10);
  if (end == rest || *end != '.' || strlen(end + 1) != 6 || errno || v <= 0 || rest[0] == '-' ||
      rest[0] == '+' || rest[0] == ' ')
    return false;
  *pid = v;
  return true;
}

// Whether the directory at path holds only what an artifact directory
// holds at its top (a temporary of ours, complete or not): nothing else of
// anyone's is deleted for having a name like ours.
static bool artifact_like(const char *path) {
  static const char *const ours[] = {"kernels", "manifest.json", "model.ir", "model.dot"};
  DIR *dp = opendir(path);
  bool ok = dp != NULL;
  for (struct dirent *e; ok && (e = readdir(dp));) {
    bool known = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
    for (size_t i = 0; i < sizeof ours / sizeof *ours; i++)
      known = known || !strcmp(e->d_name, ours[i]);
    ok = known;
  }
  if (dp)
    closedir(dp);
  return ok;
}

// Removes the temporaries of DIR that runs killed on the way left behind:
// those whose process is gone (a live one may be writing its own).
static void remove_stale(Arena *a, const char *dir) {
  const char *slash = strrchr(dir, '/');
  const char *parent = slash ? (slash == dir ? "/" : arena_strndup(a, dir, (size_t)(slash - dir)))
                             : ".";
  const char *base = slash ? slash + 1 : dir;
  size_t bn = strlen(base);
  DIR *dp = opendir(parent);
  for (struct dirent *e; dp && (e = readdir(dp));) {
    const char *nm = e->d_name;
    long pid;
    if (strncmp(nm, base, bn) || (strncmp(nm + bn, ".tmp.", 5) && strncmp(nm + bn, ".old.", 5)) ||
        !our_suffix(nm + bn + 5, &pid))
      continue;
    if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM))
      continue; // its process is still running
    const char *path = arena_printf(a, "%s/%s", parent, nm);
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && artifact_like(path))
      rm_tree(path);
  }
  if (dp)
    closedir(dp);
}

// A new temporary of ours next to dir: dir.KIND.PID.XXXXXX (created, empty).
static char *make_temp(Arena *a, const char *dir, const char *kind) {
  char *t = arena_printf(a, "%s.%s.%ld.XXXXXX", dir, kind, (long)getpid());
  return mkdtemp(t) ? t : NULL;
}

// An existing DIR is replaced only when it is an artifact directory: swapped
// with tmp in one step (then tmp holds the old one, deleted), or where that
// cannot be, renamed aside, tmp renamed in, and the old one deleted.
static bool replace_dir(Arena *a, const char *tmp, const char *dir, Diag *d) {
  struct stat st;
  char *aside = NULL;
  if (stat(dir, &st) == 0) {
    char *manifest = arena_printf(a, "%s/manifest.json", dir);
    if (!S_ISDIR(st.st_mode) || access(manifest, F_OK) != 0) {
      diag_error(d, loc_none(), "'%s' exists and is not an anec artifact directory", dir);
      return false;
    }
    int err = rt_rename_exchange(tmp, dir);
    if (!err) {
      rm_tree(tmp); // the old artifact
      return true;
    }
    if (err != ENOSYS && err != EINVAL && err != ENOTSUP) {
      diag_error(d, loc_none(), "cannot replace '%s': %s", dir, strerror(err));
      return false;
    }
    // rename(2) replaces an empty directory: the old one takes aside's place
    if (!(aside = make_temp(a, dir, "old")) || rename(dir, aside) != 0) {
      diag_error(d, loc_none(), "cannot move '%s' aside: %s", dir, strerror(errno));
      if (aside)
        rmdir(aside);
      return false;
    }
  }
  if (rename(tmp, dir) != 0) {
    int err = errno;
    if (aside && rename(aside, dir) != 0) // put the old one back
      diag_note(d, loc_none(), "the earlier '%s' is now '%s'", dir, aside);
    diag_error(d, loc_none(), "cannot create '%s': %s", dir, strerror(err));
    return false;
  }
  if (aside)
    rm_tree(aside);
  return true;
}

bool artifact_write(const Graph *g, const ParamSet *ps, const char *dir, bool fp32,
                    const ArtifactExtras *x, int *shares, Diag *d) {
  Arena *a = g->arena;
  if (!shares)
    shares = arena_alloc(a, sizeof(int) * (size_t)(g->plan->nkernels + 1));
  size_t n = strlen(dir);
  while (n > 1 && dir[n - 1] == '/') // "out/" names the directory out
    n--;
  dir = arena_strndup(a, dir, n);
  remove_stale(a, dir);
  char *tmp = make_temp(a, dir, "tmp");
  if (!tmp) {
    diag_error(d, loc_none(), "cannot create a directory next to '%s': %s", dir, strerror(errno));
    return false;
  }
  chmod(tmp, 0755);
  bool ok = write_all(g, ps, tmp, fp32, x, shares, d) && replace_dir(a, tmp, dir, d);
  if (!ok)
    rm_tree(tmp);
  return ok;
}
