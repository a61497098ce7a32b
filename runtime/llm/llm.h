// llm.h — language-model files and sampling: llama2.c checkpoints, its
// tokenizer and its sampler.
#ifndef ANERT_LLM_H
#define ANERT_LLM_H

#include "base.h"

//
// llama2c.c — llama2.c "v0" checkpoints: a header of 7 int32 {dim, hidden,
// layers, heads, kv_heads, vocab, seq} (vocab < 0: an untied classifier
// `wcls` follows the other arrays), then fp32 arrays grouped over all layers,
// matrices [out, in] row-major. Errors name the file and what is wrong.
//
// One array of the checkpoint: "tok_emb" [V, D], "rms_att" [L, D], "wq" [L, D, D],
// "wk" and "wv" [L, KV, D], "wo" [L, D, D], "rms_ffn" [L, D], "w1" and "w3"
// [L, H, D], "w2" [L, D, H], "rms_final" [D], "freq_cis_real" and
// "freq_cis_imag" [S, hs/2], "wcls" [V, D] (untied only); KV = D * kv_heads /
// heads, hs = D / heads. In this (file) order in L2cCheckpoint.t.
typedef struct L2cTensor {
  const char *name;
  int rank;
  int64_t dims[3];
  float *data;
} L2cTensor;
typedef struct L2cCheckpoint {
  L2cConfig cfg;
  L2cTensor t[16];
  int n;
  float *all; // one allocation holding every tensor's data
} L2cCheckpoint;

// Reads and validates a checkpoint: header values positive and within limits,
// dim divisible by heads, an even head size, heads divisible by kv_heads, and
// the file size exactly that of the header and every array.
bool l2c_read(const char *path, L2cCheckpoint *ck, RtDiag *d);
// Every tensor of cfg's layout, zeroed, and the RoPE tables computed; false
// (an error without a file name) for a bad configuration or out of memory.
bool l2c_alloc(L2cCheckpoint *ck, const L2cConfig *cfg, RtDiag *d);
const L2cTensor *l2c_find(const L2cCheckpoint *ck, const char *name); // NULL if absent
// The array a model's parameter name denotes, as a view into ck: llama2.c's
// name ("tok_emb", "rms_final", "wcls") the whole array, "layers.3.wq" row 3
// of the stacked "wq" (rank one less). False if ck has none.
bool l2c_slot(const L2cCheckpoint *ck, const char *name, L2cTensor *view);
// Writes ck atomically. Every array of cfg's layout must be in ck with its
// shape; freq_cis_real/imag are written from ck when present (a file read
// back byte for byte), computed from the config when absent.
bool l2c_write(const char *path, const L2cCheckpoint *ck, RtDiag *d);
void l2c_free(L2cCheckpoint *ck);

//
// tokenizer.c — llama2.c's BPE tokenizer (tokenizer.bin: int32 max_token_length,
// then per piece a float32 score, an int32 length and its bytes), encoding and
// decoding exactly as llama2.c's run.c does. Not for concurrent use of one
// Tokenizer (encoding uses its scratch buffer).
//
typedef struct Tokenizer {
  int vocab;            // pieces, the model's vocabulary size
  char **pieces;        // NUL-terminated
  float *scores;        // merge priority of each piece
  int max_len;          // the file's max_token_length
  int *sorted;          // piece ids sorted by their bytes (strcmp), for lookups
  char *text;           // the bytes of every piece
  char *scratch;        // two pieces joined, for merges
  char byte_pieces[512]; // "\xNN\0" for each byte, what <0xNN> pieces decode to
} Tokenizer;

// Loads the first `vocab` pieces of a tokenizer file. Errors name the file:
// truncated data, negative lengths, fewer pieces than vocab.
bool tok_load(const char *path, int vocab, Tokenizer *t, RtDiag *d);
void tok_free(Tokenizer *t);
// Encodes UTF-8 text: BOS (1) if asked, the piece " " when text is not empty
// (SentencePiece's dummy prefix), every codepoint as its piece or as byte
// tokens (<0xNN>: id NN + 3), then merges of the best-scoring adjacent pair
// (the leftmost of equals) while any pair is a piece; EOS (2) if asked.
// ids has room for strlen(text) + 3. Returns the number of ids.
int tok_encode(const Tokenizer *t, const char *text, bool bos, bool eos, int *ids);
// The text of token id following token prev: the leading space of a piece
// after BOS is dropped, <0xNN> pieces are the byte NN. Points into t; "" for
// an id out of range.
const char *tok_decode(const Tokenizer *t, int prev, int id);

//
// sampler.c — the next token from logits, as llama2.c samples: temperature 0
// is argmax (the lowest index of equals); otherwise softmax(logits / T), then
// top-p (nucleus) sampling when 0 < topp < 1, else plain multinomial, with
// llama2.c's xorshift* generator.
//
typedef struct SamplerProb {
  float prob;
  int index;
} SamplerProb;
typedef struct Sampler {
  int vocab;
  float temperature, topp;
  uint64_t rng;       // xorshift* state, never 0
  SamplerProb *probs; // top-p scratch, vocab entries (NULL: multinomial instead)
} Sampler;

void sampler_init(Sampler *s, int vocab, float temperature, float topp, uint64_t seed);
// Samples one id in [0, vocab); overwrites logits with probabilities when T > 0.
// -1 (nothing sampled) when a logit is NaN or +inf, or none is finite.
int sampler_sample(Sampler *s, float *logits);
void sampler_free(Sampler *s);

#endif
