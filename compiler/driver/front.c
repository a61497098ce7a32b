// front.c — the front half every subcommand shares: load the prelude and the
// model, parse both, elaborate the forward graph, run the pass pipeline.
#include "driver.h"

Graph *front_compile(Arena *a, Diag *d, const char *path, const FrontOpts *o) {
  int pf = source_load_prelude(d);
  Ast *prelude = parse_file(a, d, pf);
  if (d->errors) {
    diag_error(d, loc_none(), "internal error: the built-in prelude does not parse");
    return NULL;
  }
  int mf = source_load(d, path);
  if (mf < 0)
    return NULL;
  Ast *items = parse_file(a, d, mf);
  if (d->errors)
    return NULL;
  Graph *g = elab_program(a, d, prelude, items, mf, o->defs, o->ndefs);
  if (!g)
    return NULL;
  g->no_check = o->no_check;
  PipelineOpts pipe = o->pipe;
  if (!pipe.dump)
    pipe.dump = stderr;
  return pipeline_run(g, d, &pipe) ? g : NULL;
}
