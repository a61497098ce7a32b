// ops.c — the op table instantiated from ops.h, and lookup by .anet name.
// Everything a pass needs to know about an op generically lives in op_info.
#include "ir.h"

#include <string.h>

const OpInfo op_info[OP_COUNT] = {
#define X(name, dsl, arity, mil, infer, grad, attrs, args) \
  [OP_##name] = {dsl, arity, mil, infer, attrs, args},
#include "ops.h"
#undef X
};

int op_lookup(const char *name) {
  if (!name)
    return -1;
  for (int i = 0; i < OP_COUNT; i++)
    if (strcmp(op_info[i].name, name) == 0)
      return i;
  return -1;
}
