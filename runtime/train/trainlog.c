// trainlog.c — what a training run reports: the per-step progress line
// (step / total, loss, learning rate, ms/step, tokens/s, ETA), one JSON
// object per step and per validation for --log-json, and durations as a
// person reads them ("1h02m", "3m07s", "41s").
#include "train.h"

#include <math.h>

void trainlog_duration(double seconds, char *buf, size_t cap) {
  if (!(seconds >= 0) || seconds > 1e9) {
    snprintf(buf, cap, "?");
    return;
  }
  long s = lround(seconds);
  if (s >= 3600)
    snprintf(buf, cap, "%ldh%02ldm", s / 3600, s / 60 % 60);
  else if (s >= 60)
    snprintf(buf, cap, "%ldm%02lds", s / 60, s % 60);
  else
    snprintf(buf, cap, "%lds", s);
}

void trainlog_progress(FILE *f, const TrainStat *st, double eta_seconds) {
  char eta[32];
  trainlog_duration(eta_seconds, eta, sizeof eta);
  fprintf(f, "step %*lld/%lld  loss %.4f  lr %.2e  %.1f ms/step  %.0f tok/s  ETA %s%s\n",
          st->steps >= 1000 ? 5 : 3, (long long)st->step, (long long)st->steps, st->loss,
          st->lr, st->ms, st->tok_s, eta, st->skipped ? "  (skipped: inf/NaN gradients)" : "");
}

// A JSON number, or null for inf and NaN (which JSON cannot hold).
static void json_number(FILE *f, double v) {
  if (isfinite(v))
    fprintf(f, "%.9g", v);
  else
    fputs("null", f);
}

void trainlog_json_step(FILE *f, const TrainStat *st) {
  fprintf(f, "{\"step\": %lld, \"loss\": ", (long long)st->step);
  json_number(f, st->loss);
  fputs(", \"lr\": ", f);
  json_number(f, st->lr);
  fputs(", \"ms\": ", f);
  json_number(f, st->ms);
  fputs(", \"tok_s\": ", f);
  json_number(f, st->tok_s);
  fprintf(f, ", \"skipped\": %s}\n", st->skipped ? "true" : "false");
}

void trainlog_json_val(FILE *f, int64_t step, double val_loss) {
  fprintf(f, "{\"step\": %lld, \"val_loss\": ", (long long)step);
  json_number(f, val_loss);
  fputs("}\n", f);
}
