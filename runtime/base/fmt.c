// fmt.c — numbers for reports and messages: thousands separators and SI
// prefixes, shared by the compiler's reports and the MIL checker.
#include "base.h"

#include <stdio.h>

// 1234567 -> "1,234,567"
char *fmt_count(char *buf, size_t n, int64_t v) {
  char raw[32];
  int len = snprintf(raw, sizeof raw, "%lld", (long long)v);
  size_t o = 0;
  for (int i = 0; i < len && o + 2 < n; i++) {
    buf[o++] = raw[i];
    if (raw[i] != '-' && i < len - 1 && (len - 1 - i) % 3 == 0)
      buf[o++] = ',';
  }
  buf[o] = '\0';
  return buf;
}

// 2100000000, "FLOP" -> "2.10 GFLOP"; below 1000: "999 FLOP"
char *fmt_si(char *buf, size_t n, double v, const char *unit) {
  static const char prefixes[] = "KMGTPE";
  if (v < 1000) {
    snprintf(buf, n, "%.0f %s", v, unit);
    return buf;
  }
  int u = 0;
  for (v /= 1000; v >= 999.995 && u < 5; u++) // so that "%.2f" never shows 1000.00
    v /= 1000;
  snprintf(buf, n, "%.2f %c%s", v, prefixes[u], unit);
  return buf;
}
