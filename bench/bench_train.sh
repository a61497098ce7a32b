#!/bin/bash
# bench_train.sh — anec's generated trainer (anec build, reference backend, fp16 and fp32)
# against the same training step in float32 PyTorch (bench/torch_train_step.py), batch 1:
# ms/step, the ratio anec/torch and where anec's step goes. Details: bench/README.md.
# Usage: bench_train.sh ANEC SOURCE_DIR [MODEL...]  (stories15m stories110m, or .anet paths)
# Environment: ANEC_BENCH_{DATA,PYTHON,WARMUP,STEPS,PRECISIONS,TORCH_THREADS}, OMP_WAIT_POLICY
set -euo pipefail

die() { echo "bench_train.sh: $*" >&2; exit 1; }
note() { echo "bench_train.sh: $*" >&2; }

[ $# -ge 2 ] || die "usage: bench_train.sh ANEC SOURCE_DIR [MODEL...]"
anec=$1 src=$2
shift 2
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(stories15m stories110m)
[ -x "$anec" ] || die "$anec: not an executable (build it: make anec)"
[ -d "$src/samples" ] || die "$src: not anec's source directory (no samples/)"
for m in "${models[@]}"; do
  case $m in *.anet) anet=$m ;; *) anet=$src/samples/$m.anet ;; esac
  [ -r "$anet" ] || die "$anet: no such model (MODEL: stories15m, stories110m or a .anet path)"
done

# The corpus and the llama2.c tokenizer: samples/data, or ANEC_BENCH_DATA=DIR with
# DIR/tinystories_excerpt.txt and DIR/tokenizer.bin (or DIR/llama2c/tokenizer.bin).
data_dir=${ANEC_BENCH_DATA:-$src/samples/data}
text=$data_dir/tinystories_excerpt.txt tok=$data_dir/tokenizer.bin
[ -r "$tok" ] || [ ! -r "$data_dir/llama2c/tokenizer.bin" ] || tok=$data_dir/llama2c/tokenizer.bin
if [ ! -r "$text" ] || [ ! -r "$tok" ]; then
  die "missing $text or $tok (ANEC_BENCH_DATA=DIR: a directory with tinystories_excerpt.txt and tokenizer.bin; default $src/samples/data)"
fi
py=${ANEC_BENCH_PYTHON:-/usr/bin/python3}
warm=${ANEC_BENCH_WARMUP:-2} steps=${ANEC_BENCH_STEPS:-5}
read -r -a precs <<<"${ANEC_BENCH_PRECISIONS:-fp16 fp32}"
for prec in "${precs[@]}"; do
  case $prec in fp16 | fp32) ;; *) die "ANEC_BENCH_PRECISIONS: '$prec' is not fp16 or fp32" ;; esac
done
threads=${ANEC_BENCH_TORCH_THREADS:-$(nproc)}
for v in "$warm" "$steps" "$threads"; do
  [[ $v =~ ^[0-9]+$ ]] || die "'$v' is not a count (ANEC_BENCH_WARMUP, _STEPS, _TORCH_THREADS)"
done
if [ "$steps" -lt 1 ] || [ "$threads" -lt 1 ]; then
  die "ANEC_BENCH_STEPS and ANEC_BENCH_TORCH_THREADS must be at least 1"
fi
# torch's OpenMP threads spin between parallel regions by default, against OpenBLAS's own
# threads (its sgemm) on the same cores: passive waiting is the faster torch here.
# OMP_WAIT_POLICY= (empty) leaves libgomp's default.
torch_wait=${OMP_WAIT_POLICY-PASSIVE} torch_env=(-u OMP_WAIT_POLICY)
[ -z "$torch_wait" ] || torch_env=("OMP_WAIT_POLICY=$torch_wait")

t=$(mktemp -d "${TMPDIR:-/tmp}/anec-bench-train.XXXXXX")
trap 'rm -rf "$t"' EXIT

have_torch=0 torch_ver="not available"
if command -v "$py" >/dev/null 2>&1; then
  if torch_ver=$("$py" -c 'import torch; print(torch.__version__)' 2>/dev/null); then
    have_torch=1
  else
    torch_ver="not available ($py cannot import torch)"
  fi
fi

loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown; }
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -1)
echo "bench_train: $(date +%F), ${cpu:-unknown CPU}, $(nproc) CPUs, load average $(loadavg)"
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}" \
  "OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-unset} (anec and torch)"
if [ $have_torch = 1 ]; then
  echo "torch $torch_ver ($py), torch.set_num_threads($threads)," \
    "OMP_WAIT_POLICY=${torch_wait:-unset}${OMP_WAIT_POLICY+ (from the environment)}"
else
  echo "torch: $torch_ver; the torch column is skipped"
fi
if awk -v l="$(loadavg | cut -d' ' -f1)" -v n="$(nproc)" 'BEGIN {exit !(l + 0 > n / 2)}'; then
  echo "warning: load average over half the CPUs: other processes run, timings will be skewed"
fi
echo "batch 1, the model's seq (256 for the stories); torch: $warm warm-up + $steps timed steps;"
echo "anec: step 1 (open, first touch), $warm warm-up, $steps timed; --loss-scale 1 (no skipped" \
  "fp16 updates)"
echo

# The report's "LABEL  X ms" value.
report() { sed -n "s/^ *$2 *\([0-9.]*\) ms.*/\1/p" "$1" | head -1; }
# Total ms of a category (or "step") over a run: the report prints means over the steps run.
total() { # REPORT LABEL
  local n
  n=$(sed -n 's/^step .* ms *\([0-9]*\) steps in.*/\1/p' "$1" | head -1)
  awk -v a="$(report "$1" "$2")" -v n="$n" 'BEGIN {printf "%.3f", a * n}'
}
# "STEP MS" for each step of a --log-json log.
log_ms() { sed -n 's/.*"step": *\([0-9]*\),.*"ms": *\([-0-9.e+]*\),.*/\1 \2/p' "$1"; }
# The median "ms" of the log's steps after the first SKIP.
median_ms() { # LOG SKIP
  log_ms "$1" | awk -v skip="$2" '$1 > skip {print $2}' | sort -g |
    awk '{v[NR] = $1}
         END {if (!NR) exit 1
              printf "%.1f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
# The sum of the log's "ms" over the steps FROM < step <= TO.
sum_ms() { # LOG FROM TO
  log_ms "$1" | awk -v from="$2" -v to="$3" '$1 > from && $1 <= to {s += $2} END {print s + 0}'
}
show() { cat "$1" >&2; die "$2"; }

rows=()
for m in "${models[@]}"; do
  case $m in
    *.anet) anet=$m m=$(basename "$m" .anet) ;;
    *) anet=$src/samples/$m.anet ;;
  esac
  case $m in
    stories15m) tshape=(--model 15m) ;;
    stories110m) tshape=(--model 110m) ;;
    *) tshape=() ;; # no PyTorch twin
  esac

  note "$m: anec build"
  exe=$t/$m
  "$anec" build "$anet" -o "$exe" >"$t/$m.build" 2>&1 || show "$t/$m.build" "$m: anec build failed"

  torch_ms=-
  if [ $have_torch = 1 ] && [ ${#tshape[@]} -gt 0 ]; then
    note "$m: PyTorch step ($((warm + steps)) steps)"
    rc=0
    env "${torch_env[@]}" "$py" "$src/bench/torch_train_step.py" "${tshape[@]}" --batch 1 \
      --warmup "$warm" --steps "$steps" --threads "$threads" >"$t/$m.torch" 2>&1 || rc=$?
    if [ $rc = 0 ]; then
      torch_ms=$(sed -n 's/^ms_per_step //p' "$t/$m.torch")
      [ -n "$torch_ms" ] || show "$t/$m.torch" "$m: no ms_per_step from torch_train_step.py"
    elif [ $rc = 77 ]; then
      note "$m: torch_train_step.py cannot import torch; skipped"
    else
      show "$t/$m.torch" "$m: torch_train_step.py failed (exit $rc)"
    fi
  fi

  for prec in "${precs[@]}"; do
    run=("$exe" --data "$text" --tokenizer "$tok" --batch 1 --precision "$prec" --loss-scale 1 -q)
    # Run A: the untimed 1 + warm steps alone; run B: those and the timed ones, logged.
    note "$m $prec: anec trainer, $((1 + warm)) steps, then $((1 + warm + steps))"
    "${run[@]}" --steps $((1 + warm)) >"$t/a.out" 2>&1 || show "$t/a.out" "$m $prec: trainer failed"
    "${run[@]}" --steps $((1 + warm + steps)) --log-json "$t/b.json" >"$t/b.out" 2>&1 ||
      show "$t/b.out" "$m $prec: trainer failed"
    for f in a.out b.out; do
      grep -q ' steps in ' "$t/$f" || show "$t/$f" "$m $prec: no report from the trainer"
    done
    if grep -q '"skipped": *true' "$t/b.json"; then
      note "$m $prec: some steps skipped their update (inf/NaN gradients)"
    fi
    ms=$(median_ms "$t/b.json" $((1 + warm))) || die "$m $prec: no timed steps in the log"
    first=$(log_ms "$t/b.json" | awk '$1 == 1 {printf "%.0f", $2}')

    # The split of the timed steps. Run B's report counts its untimed steps too; take
    # them out as run A's categories scaled to the time they took in run B (its log):
    # the cold step 1 varies by seconds between runs. Shown as shares of the median,
    # so that the four columns add up to it.
    scale=$(awk -v b="$(sum_ms "$t/b.json" 0 $((1 + warm)))" -v a="$(total "$t/a.out" step)" \
      'BEGIN {print (a > 0 ? b / a : 1)}') # parenthesized: a bare '>' redirects print
    split=()
    for what in step kernels "CPU ops" staging; do
      split+=("$(awk -v a="$(total "$t/a.out" "$what")" -v b="$(total "$t/b.out" "$what")" \
        -v f="$scale" 'BEGIN {print b - f * a}')")
    done
    read -r -a split < <(awk -v ms="$ms" -v s="${split[0]}" -v k="${split[1]}" \
      -v c="${split[2]}" -v g="${split[3]}" 'BEGIN {
        if (s <= 0) { print "- - - -"; exit }
        printf "%.1f %.1f %.1f %.1f\n", ms * k / s, ms * c / s, ms * g / s, ms * (s - k - c - g) / s
      }')
    ratio=-
    if [ "$torch_ms" != - ]; then
      ratio=$(awk -v a="$ms" -v b="$torch_ms" 'BEGIN {printf "%.2fx", a / b}')
    fi
    rows+=("$(printf '%-12s %-5s %9s %9s %7s  %9s %8s %8s %8s %9s' "$m" "$prec" "$ms" \
      "$torch_ms" "$ratio" "${split[@]}" "$first")")
  done
done

echo "ms/step: anec the median of its timed steps, torch the median of its timed steps;"
echo "anec's split: the timed steps' shares of its ms/step (from two runs, bench/README.md);"
echo "first: anec's step 1 (opening, first touch of its buffers), not in the rest"
printf '%-12s %-5s %9s %9s %7s  %9s %8s %8s %8s %9s\n' model prec anec torch ratio \
  kernels "CPU ops" staging host first
printf '%s\n' "${rows[@]}"
echo "load average at the end: $(loadavg) (other processes on the machine skew both columns)"
