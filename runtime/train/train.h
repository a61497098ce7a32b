// train.h — the training runtime behind train_main (anert.h): AdamW and
// loss scaling, the progress log, the token data and checkpoints.
#ifndef ANERT_TRAIN_H
#define ANERT_TRAIN_H

#include "exec.h"
#include "llm.h"

//
// adamw.c — AdamW on fp32 master weights (bias-corrected moments, decoupled
// weight decay: PyTorch's torch.optim.AdamW), global-norm clipping, and the
// learning-rate schedule
//
typedef struct AdamW {
  float beta1, beta2, eps, weight_decay;
} AdamW;
// Update number t (1, 2, ...) of n weights w with gradients gscale * g and
// moments m, v (zero before the first): w -= lr wd w (when decay: matrices,
// not norms or biases), then w -= lr m_hat / (sqrt(v_hat) + eps). fp32
// arithmetic, as torch's; on all cores.
void adamw_update(const AdamW *o, int64_t t, float lr, float gscale, float *w, const float *g,
                  float *m, float *v, int64_t n, bool decay);
// The sum of squares of g[0..n), in double and on all cores; inf or NaN when
// any element is. Summed in fixed blocks: the same bits on any core count.
double grad_sumsq(const float *g, int64_t n);
// sqrt of the sum of squares of every gradient (n tensors of counts[k]).
double grad_global_norm(const float *const *grads, const int64_t *counts, int n);
// The factor that brings a global norm down to max_norm (1: under it, or
// max_norm <= 0 for no clipping).
float grad_clip_scale(double norm, float max_norm);
// The learning rate of step (0, 1, ...): lr (s + 1) / warmup during the
// warmup, then cosine from lr down to min_lr at step `total`, min_lr after.
float lr_schedule(int64_t step, int64_t warmup, int64_t total, float lr, float min_lr);

// Loss scaling: backward starts from loss * scale so that small fp16
// gradients do not flush to zero; the update divides it out. A step whose
// gradients hold an inf or NaN is skipped (counted in `skipped`). Dynamic
// scaling (PyTorch's GradScaler rules) also halves the scale then, and
// doubles it after `interval` good steps in a row; a static scale stays.
typedef struct LossScale {
  float scale;
  bool dynamic;
  int64_t interval; // good steps before a dynamic scale grows (2000)
  int64_t good;     // good steps since the last change
  int64_t skipped;  // steps skipped so far
} LossScale;
enum { LOSS_SCALE_INTERVAL = 2000 };
#define LOSS_SCALE_DYNAMIC_INIT 65536.0f
#define LOSS_SCALE_MIN 0x1p-24f
void loss_scale_init(LossScale *ls, float scale, bool dynamic);
// Parses "N" (N > 0, finite) or "dynamic"; false for anything else.
bool loss_scale_parse(const char *text, LossScale *ls);
// After a step's backward: whether to apply the update (gradients finite);
// adjusts the scale and counters for the next step.
bool loss_scale_update(LossScale *ls, bool finite);

//
// trainlog.c — a training run's progress line and --log-json records
//
typedef struct TrainStat {
  int64_t step, steps; // step is 1-based: step of steps
  double loss, lr, ms, tok_s;
  bool skipped;        // loss scaling skipped the update
} TrainStat;
// "step  12/200  loss 3.4567  lr 3.00e-04  412.3 ms/step  1240 tok/s  ETA 1m17s"
void trainlog_progress(FILE *f, const TrainStat *st, double eta_seconds);
// {"step": 12, "loss": 3.4567, "lr": 0.0003, "ms": 412.3, "tok_s": 1240, "skipped": false}
// (inf and NaN as null); and {"step": 12, "val_loss": 3.61}.
void trainlog_json_step(FILE *f, const TrainStat *st);
void trainlog_json_val(FILE *f, int64_t step, double val_loss);
// "1h02m", "3m07s", "41s"; "?" for a negative or absurd time.
void trainlog_duration(double seconds, char *buf, size_t cap);

//
// dataset.c — the token stream a trainer learns from, and the cursor that
// cuts it into micro-batches
//
typedef struct Dataset {
  uint16_t *ids;    // n token ids, each below the vocabulary size
  int64_t n;
  char *path;       // the file loaded, for messages (NULL: "the dataset")
} Dataset;
// Loads `path`. A name ending in ".bin" is raw little-endian uint16 token ids
// (an odd byte count or an id >= vocab is an error naming it). Any other file
// is UTF-8 text: with a tokenizer, BOS (1) and then the text as tok_encode
// encodes it (dummy prefix, no EOS), computed a line at a time (lines over
// 1 KiB are cut before a word's space, over 4 KiB anywhere), which gives the
// same ids as one call when no piece spans a line break or a word boundary,
// as in Llama-2's vocabulary; text must have no NUL byte then. Without one
// (tok NULL), every byte is its id (vocab must be at least 256). vocab is at
// most 65536. An empty file is an error. Errors name the file.
bool dataset_load(Dataset *ds, const char *path, const Tokenizer *tok, int vocab, RtDiag *d);
void dataset_free(Dataset *ds);

// Where the next micro-batch comes from. rng is the state of splitmix64
// (Steele, Lea, Flood 2014; Vigna's reference code): each draw adds
// 0x9E3779B97F4A7C15 to the state and mixes it; the same numbers on every
// platform, any seed (0 too) good. next: the next sequential micro-batch.
typedef struct DataCursor {
  uint64_t rng;
  int64_t next;
} DataCursor;
void data_cursor_init(DataCursor *c, uint64_t seed); // rng = seed, next = 0
// Fills inputs[0..seq) and targets[0..seq) = tokens [s, s + seq) and
// [s + 1, s + seq + 1). Random order: s uniform in [0, n - seq - 1] (one
// splitmix64 draw, redrawn while below 2^64 mod (n - seq), then modulo).
// Sequential: micro-batch i = c->next starts at s = i * seq; when that runs
// past the end (s + seq >= n), i is 0 instead; c->next becomes i + 1. An
// error if seq < 1 or n < seq + 1.
bool dataset_batch(const Dataset *ds, DataCursor *c, bool sequential, int seq, int32_t *inputs,
                   int32_t *targets, RtDiag *d);

//
// ckpt.c — training checkpoints: everything a run needs to resume bit for
// bit. One little-endian file (version CKPT_VERSION = 3):
//   "ANECKPT\0", u32 version, u64 model hash, u64 plan hash, i64 step,
//   u64 rng, u64 cursor.rng, i64 cursor.next, f32 loss scale, i64 good
//   steps, i64 skipped steps, u32 tensor count, per tensor: u8 name length
//   (1..255), the name (no NUL), i64 element count, then count fp32
//   weights, count AdamW m, count AdamW v; u64 FNV-1a 64 of every byte before it.
// Version 2 files (still read) lack the model hash: their one hash, the
// plan's, is where version 3 has the model hash.
//
// A checkpoint's step is at most CKPT_MAX_STEP; its loss scale finite and at
// least LOSS_SCALE_MIN; its weights and moments finite, second moments >= 0.
enum { CKPT_VERSION = 3, CKPT_VERSION_MIN = 2, CKPT_MAX_NAME = 255 };
#define CKPT_MAX_STEP ((int64_t)1 << 48)
typedef struct CkptTensor {
  const char *name;
  int64_t count;
  float *w, *m, *v; // count floats each (NULL when count is 0)
} CkptTensor;
typedef struct Ckpt {
  uint64_t model_hash; // what the tensors hold: ckpt_model_hash of the model's tensors
  uint64_t plan_hash;  // the step that trained them (TrainModel.hash): informative
  int64_t step;
  uint64_t rng;        // the trainer's own generator (dropout, sampling)
  DataCursor cursor;
  float loss_scale;
  int64_t good_steps;  // good steps since the last loss-scale change
  int64_t skipped;     // steps skipped so far: AdamW has made step - skipped updates
  int ntensors;
  CkptTensor *t;
} Ckpt;
// The model hash of n tensors: FNV-1a 64 of what gives their stored values
// a meaning — the state's layout (fp32 weights, AdamW m and v in fp32) and,
// per tensor, its name, rank and dims. Not the generated code: another
// --target, --dw or anec version trains the same tensors. A hyper-parameter
// that changes what the values mean (none today) is to join the layout tag.
uint64_t ckpt_model_hash(const TrainTensor *t, int n);
// Writes c atomically: a temp file in path's directory, written, flushed,
// fsync'ed, renamed over path (then the directory fsync'ed). On any failure
// the temp file is removed, path is untouched, and the error names it.
bool ckpt_write(const char *path, const Ckpt *c, RtDiag *d);
// Reads path into `into`, which holds what the model expects: model_hash,
// ntensors and every tensor's name, count and buffers. The whole file is
// read, then checked in this order: magic, version, checksum, model hash
// (version 3), tensor count, each tensor's name and count, no trailing
// bytes; only then are the scalars, the file's plan hash and the buffers
// filled (the caller compares the plan hash). On error (named file, what
// is wrong) `into` is unchanged.
bool ckpt_read(const char *path, Ckpt *into, RtDiag *d);

#endif
