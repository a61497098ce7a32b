// test_sampler.c — sampling as llama2.c does it: argmax and its ties, a known
// draw sequence of the xorshift* generator, multinomial frequencies, the top-p
// nucleus, temperature, and degenerate sizes.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "llm.h"

#include <math.h>
#include <string.h>

static const float probs4[4] = {0.1f, 0.2f, 0.3f, 0.4f};

static int draw(Sampler *s, const float *probs, int n) {
  float logits[64];
  for (int i = 0; i < n; i++)
    logits[i] = logf(probs[i]);
  return sampler_sample(s, logits);
}

static void test_argmax(void **state) {
  (void)state;
  Sampler s;
  sampler_init(&s, 4, 0.0f, 0.9f, 1);
  float a[] = {1, 3, 3, 2}, b[] = {5, 5, 5, 5}, c[] = {-INFINITY, -2, -1, -3};
  assert_int_equal(sampler_sample(&s, a), 1); // the lowest index of equals
  assert_int_equal(sampler_sample(&s, b), 0);
  assert_int_equal(sampler_sample(&s, c), 2);
  assert_float_equal(a[1], 3, 0); // logits untouched at temperature 0
  sampler_free(&s);
}

// Logits a broken model gives (NaN, +inf, nothing finite) sample nothing, at
// every temperature: the caller reports them instead of printing ids.
static void test_non_finite_logits(void **state) {
  (void)state;
  for (int k = 0; k < 2; k++) {
    Sampler s;
    sampler_init(&s, 3, k ? 0.8f : 0.0f, 0.9f, 1);
    float a[] = {1, NAN, 2}, b[] = {1, INFINITY, 2}, c[] = {-INFINITY, -INFINITY, -INFINITY};
    assert_int_equal(sampler_sample(&s, a), -1);
    assert_int_equal(sampler_sample(&s, b), -1);
    assert_int_equal(sampler_sample(&s, c), -1);
    sampler_free(&s);
  }
}

// The ids llama2.c's sampler draws from {0.1, 0.2, 0.3, 0.4} with seed 1234
// (its xorshift* coins: 0.7357, 0.3041, 0.4109, ...; computed separately).
static void test_known_sequence(void **state) {
  (void)state;
  const int want[12] = {3, 2, 2, 2, 3, 1, 2, 0, 2, 2, 2, 3};
  Sampler s;
  sampler_init(&s, 4, 1.0f, 1.0f, 1234);
  for (int i = 0; i < 12; i++)
    assert_int_equal(draw(&s, probs4, 4), want[i]);
  sampler_free(&s);
}

static void test_frequencies(void **state) {
  (void)state;
  Sampler s, t;
  sampler_init(&s, 4, 1.0f, 0.0f, 42);
  sampler_init(&t, 4, 1.0f, 0.0f, 42);
  int count[4] = {0};
  for (int i = 0; i < 40000; i++) {
    int k = draw(&s, probs4, 4);
    assert_int_equal(draw(&t, probs4, 4), k); // same seed, same draws
    count[k]++;
  }
  for (int k = 0; k < 4; k++)
    assert_float_equal(count[k] / 40000.0, probs4[k], 0.01);
  float logits[4] = {0, 1, 2, 3};
  sampler_sample(&s, logits); // overwritten with the probabilities
  assert_float_equal(logits[0] + logits[1] + logits[2] + logits[3], 1.0, 1e-6);
  assert_true(logits[3] > logits[2] && logits[2] > logits[1]);
  sampler_free(&s), sampler_free(&t);
}

// Top-p keeps the most probable tokens until their sum exceeds topp.
static void test_topp(void **state) {
  (void)state;
  const float p[5] = {0.05f, 0.5f, 0.15f, 0.3f, 0.0001f};
  Sampler s;
  sampler_init(&s, 5, 1.0f, 0.7f, 7); // 0.5 + 0.3 > 0.7: {1, 3}
  int count[5] = {0};
  for (int i = 0; i < 20000; i++)
    count[draw(&s, p, 5)]++;
  assert_int_equal(count[0] + count[2] + count[4], 0);
  assert_float_equal(count[1] / 20000.0, 0.5 / 0.8, 0.015);
  sampler_free(&s);
  sampler_init(&s, 5, 1.0f, 0.4f, 7); // 0.5 > 0.4: {1}
  for (int i = 0; i < 1000; i++)
    assert_int_equal(draw(&s, p, 5), 1);
  sampler_free(&s);
}

static void test_temperature(void **state) {
  (void)state;
  Sampler cold, hot;
  sampler_init(&cold, 4, 0.01f, 1.0f, 3);
  sampler_init(&hot, 4, 1000.0f, 1.0f, 3);
  int count[4] = {0};
  for (int i = 0; i < 20000; i++) {
    assert_int_equal(draw(&cold, probs4, 4), 3);
    count[draw(&hot, probs4, 4)]++;
  }
  for (int k = 0; k < 4; k++)
    assert_float_equal(count[k] / 20000.0, 0.25, 0.015);
  sampler_free(&cold), sampler_free(&hot);
}

static void test_degenerate(void **state) {
  (void)state;
  Sampler s;
  float one[1] = {0.5f};
  sampler_init(&s, 1, 1.0f, 0.9f, 0);
  assert_int_equal(sampler_sample(&s, one), 0);
  sampler_free(&s);
  sampler_init(&s, 4, 1.0f, 0.9f, 0); // seed 0 still draws (the state is never 0)
  assert_int_not_equal(s.rng, 0);
  int seen = 0;
  for (int i = 0; i < 200; i++)
    seen |= 1 << draw(&s, probs4, 4);
  assert_int_equal(seen & 0xE, 0xE); // the nucleus of topp 0.9 holds at least 3, 2, 1
  sampler_free(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_argmax),
      cmocka_unit_test(test_non_finite_logits),
      cmocka_unit_test(test_known_sequence),
      cmocka_unit_test(test_frequencies), cmocka_unit_test(test_topp),
      cmocka_unit_test(test_temperature), cmocka_unit_test(test_degenerate),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
