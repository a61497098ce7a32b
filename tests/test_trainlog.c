// test_trainlog.c — runtime/trainlog.c: the progress line, the --log-json
// records (parsed back with cJSON; inf and NaN as null) and durations.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "train.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

// What f printed: the stream's text, malloc'd.
typedef void (*PrintFn)(FILE *f, const void *ctx);

static char *printed(PrintFn fn, const void *ctx) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_non_null(f);
  fn(f, ctx);
  fclose(f);
  return text;
}

static void print_progress(FILE *f, const void *ctx) {
  trainlog_progress(f, ctx, 77.4);
}

static void print_json(FILE *f, const void *ctx) {
  trainlog_json_step(f, ctx);
}

static void test_progress_line(void **state) {
  (void)state;
  TrainStat st = {12, 200, 3.45678, 3e-4, 412.34, 1240.4, false};
  char *line = printed(print_progress, &st);
  assert_string_equal(line, "step  12/200  loss 3.4568  lr 3.00e-04  412.3 ms/step  1240 tok/s  "
                            "ETA 1m17s\n");
  free(line);
  st.skipped = true;
  line = printed(print_progress, &st);
  assert_non_null(strstr(line, "(skipped: inf/NaN gradients)"));
  free(line);
}

static void test_json_step(void **state) {
  (void)state;
  TrainStat st = {7, 10, 2.5, 1e-3, 10.25, 3000, true};
  char *text = printed(print_json, &st);
  assert_non_null(strchr(text, '\n'));
  cJSON *j = cJSON_Parse(text);
  assert_non_null(j);
  assert_int_equal(cJSON_GetObjectItem(j, "step")->valueint, 7);
  assert_true(cJSON_GetObjectItem(j, "loss")->valuedouble == 2.5);
  assert_true(fabs(cJSON_GetObjectItem(j, "lr")->valuedouble - 1e-3) < 1e-12);
  assert_true(cJSON_GetObjectItem(j, "ms")->valuedouble == 10.25);
  assert_true(cJSON_GetObjectItem(j, "tok_s")->valuedouble == 3000);
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "skipped")));
  cJSON_Delete(j);
  free(text);

  st.loss = NAN, st.tok_s = INFINITY, st.skipped = false;
  text = printed(print_json, &st);
  j = cJSON_Parse(text);
  assert_non_null(j);
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "loss")));
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "tok_s")));
  assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "skipped")));
  cJSON_Delete(j);
  free(text);
}

static void print_val(FILE *f, const void *ctx) {
  trainlog_json_val(f, 40, *(const double *)ctx);
}

static void test_json_val(void **state) {
  (void)state;
  double v = 3.25;
  char *text = printed(print_val, &v);
  assert_string_equal(text, "{\"step\": 40, \"val_loss\": 3.25}\n");
  free(text);
}

static void test_duration(void **state) {
  (void)state;
  const struct {
    double s;
    const char *want;
  } cases[] = {{0, "0s"}, {41.4, "41s"}, {59.6, "1m00s"}, {187, "3m07s"},
               {3600, "1h00m"}, {3725, "1h02m"}, {-1, "?"}, {NAN, "?"}, {1e12, "?"}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char buf[32];
    trainlog_duration(cases[i].s, buf, sizeof buf);
    if (strcmp(buf, cases[i].want))
      fail_msg("%g s: '%s', want '%s'", cases[i].s, buf, cases[i].want);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_progress_line),
      cmocka_unit_test(test_json_step),
      cmocka_unit_test(test_json_val),
      cmocka_unit_test(test_duration),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
