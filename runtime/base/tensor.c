// tensor.c — host tensors (RtTensor): dense, C-order arrays of fp16, fp32
// or int32 that cross the runtime's boundary (npy files, executor inputs and
// outputs); their element counts, allocation and printed shapes.
#include "base.h"

#include <stdlib.h>
#include <string.h>

int64_t rt_numel(int rank, const int64_t *dims) {
  if (rank < 0 || rank > MIL_MAX_RANK)
    return -1;
  int64_t n = 1;
  for (int i = 0; i < rank; i++) {
    if (dims[i] < 0 || (dims[i] > 0 && n > RT_MAX_NUMEL / dims[i]))
      return -1;
    n *= dims[i];
  }
  return n;
}

size_t rt_dtype_size(MilDType t) {
  return t == MIL_FP16 ? 2 : t == MIL_FP32 || t == MIL_INT32 ? 4 : 0;
}

bool rt_tensor_alloc(RtTensor *t, MilDType dtype, int rank, const int64_t *dims) {
  memset(t, 0, sizeof *t);
  int64_t n = rt_numel(rank, dims);
  if (n < 0 || rt_dtype_size(dtype) == 0)
    return false;
  t->data = calloc(n ? (size_t)n : 1, rt_dtype_size(dtype));
  if (!t->data)
    return false;
  t->dtype = dtype;
  t->rank = rank;
  memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
  t->count = n;
  return true;
}

void rt_tensor_free(RtTensor *t) {
  free(t->data);
  t->data = NULL;
}

char *rt_shape_str(char *buf, size_t n, int rank, const int64_t *dims) {
  size_t k = (size_t)snprintf(buf, n, "[");
  for (int i = 0; i < rank && k < n; i++) {
    const char *sep = i ? ", " : "";
    k += dims[i] < 0 ? (size_t)snprintf(buf + k, n - k, "%s?", sep)
                     : (size_t)snprintf(buf + k, n - k, "%s%lld", sep, (long long)dims[i]);
  }
  if (k < n)
    snprintf(buf + k, n - k, "]");
  return buf;
}
