/* fa2jit C ABI: FlashAttention-2 forward and backward for C callers and foreign-function interfaces (ctypes).
 * Every function returns a status and never lets an exception out; the message of the last failed
 * call on the calling thread is fa2_last_error(). The C++ API (fa2jit.hpp) documents the semantics. */
#ifndef FA2JIT_FA2JIT_H
#define FA2JIT_FA2JIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped when a declaration here changes incompatibly; fa2_abi_version() reports the library's. */
#define FA2_ABI_VERSION 3

typedef enum fa2_status {
  FA2_OK = 0,
  FA2_ERROR_ARGUMENT = 1, /* a bad argument: the message names the value and what is allowed */
  FA2_ERROR_CONFIG = 2,
  FA2_ERROR_COMPILE = 3,  /* NVRTC failed: the message carries the program log */
  FA2_ERROR_DRIVER = 4,   /* no libcuda.so.1, no GPU, unsupported device, or a driver call failed */
  FA2_ERROR_LAUNCH = 5,
  FA2_ERROR_CACHE = 6,    /* the SQLite kernel cache, including a cache-only miss */
  FA2_ERROR_TUNE = 7,
  FA2_ERROR_CODEGEN = 8,
  FA2_ERROR_INTERNAL = 9  /* anything else, e.g. out of host memory */
} fa2_status;

typedef enum fa2_dtype { FA2_DTYPE_FP16 = 0, FA2_DTYPE_BF16 = 1 } fa2_dtype;

/* The element type of an extra array the user snippets read (fa2jit/user_mods.hpp). */
typedef enum fa2_extra_type {
  FA2_EXTRA_INT32 = 0,
  FA2_EXTRA_INT64 = 1,
  FA2_EXTRA_FLOAT32 = 2,
  FA2_EXTRA_UINT8 = 3
} fa2_extra_type;
#define FA2_MAX_EXTRA_ARRAYS 4

typedef enum fa2_tune_policy {
  FA2_TUNE_DEFAULT = -1,     /* $FA2JIT_TUNE, else on-first-use */
  FA2_TUNE_ON_FIRST_USE = 0, /* the cached tuning; on a miss, tune now and store it */
  FA2_TUNE_HEURISTIC = 1,    /* the built-in config; no tuning, no cache */
  FA2_TUNE_CACHE_ONLY = 2    /* the cached tuning; a miss is an error */
} fa2_tune_policy;

/* Q, O: [batch, seqlen_q, heads_q, head_dim]; K, V: [batch, seqlen_k, heads_kv, head_dim], given by
 * element strides with a contiguous last dimension (BSHD and BHSD are both just strides).
 * struct_size comes first so the struct can grow: set it to sizeof(fa2_forward_args), or start from
 * fa2_forward_args_init(), which also sets the defaults. */
typedef struct fa2_forward_args {
  int struct_size;
  int dtype; /* fa2_dtype */
  const void* q;
  const void* k;
  const void* v;
  void* o;
  float* lse; /* NULL, or [batch, heads_q, seqlen_q] contiguous fp32 (natural log) */
  int batch;
  int heads_q;
  int heads_kv; /* divides heads_q (GQA/MQA) */
  int seqlen_q;
  int seqlen_k;
  int head_dim;
  int64_t q_batch_stride, q_head_stride, q_row_stride;
  int64_t k_batch_stride, k_head_stride, k_row_stride;
  int64_t v_batch_stride, v_head_stride, v_row_stride;
  int64_t o_batch_stride, o_head_stride, o_row_stride;
  int causal;          /* nonzero: bottom-right aligned mask */
  float softmax_scale; /* 0: 1/sqrt(head_dim); otherwise finite and positive */
  int tune_policy;     /* fa2_tune_policy */
  const char* cache_path; /* NULL or "": $FA2JIT_CACHE_DIR/kernels.db or ~/.cache/fa2jit/kernels.db */
  /* Since fa2jit 0.2: the built-in variants (fa2jit/variant.hpp: flash-attn 2.6's window_size, softcap and
   * alibi_slopes). A caller built against an older header passes the older struct_size and gets them off. All
   * zero is off: window nonzero applies window_left and window_right (-1: unbounded side; causal makes the right
   * side 0); softcap > 0 caps the logits (0: off); alibi_slopes is NULL or device fp32 [heads_q] (batch stride 0)
   * or [batch, heads_q] (batch stride >= heads_q, in elements). */
  int window;
  int window_left;
  int window_right;
  float softcap;
  const float* alibi_slopes;
  int64_t alibi_slopes_batch_stride;
  /* Since fa2jit 0.3: user modifications compiled into the kernel (fa2jit/user_mods.hpp). NULL or "" is off.
   * score_mod: a CUDA expression (or body with return) of score, batch, head, q_idx, kv_idx, seqlen_q, seqlen_k
   * and the extra arrays giving the new logit; score_mod_grad: its derivative in score (NULL: derived);
   * mask_mod: a boolean expression of batch, head, q_idx, kv_idx, seqlen_q, seqlen_k. The first num_extra
   * entries of extra_names / extra_types (fa2_extra_type) / extra_data name the read-only device arrays the
   * snippets index. A caller built against an older header passes the older struct_size and gets them off. */
  const char* score_mod;
  const char* score_mod_grad;
  const char* mask_mod;
  int num_extra;
  const char* extra_names[FA2_MAX_EXTRA_ARRAYS];
  int extra_types[FA2_MAX_EXTRA_ARRAYS];
  const void* extra_data[FA2_MAX_EXTRA_ARRAYS];
} fa2_forward_args;

/* Zeroes *args and sets struct_size and tune_policy = FA2_TUNE_DEFAULT (so every variant is off). */
void fa2_forward_args_init(fa2_forward_args* args);
/* sizeof(fa2_forward_args) as the library was built, to check a binding's layout. */
int fa2_forward_args_size(void);

/* O = softmax(Q K^T * scale) V, enqueued on `stream` (a CUstream; NULL = the legacy default stream)
 * in the calling thread's current CUDA context (device 0's primary context when there is none).
 * On a stream capturing a CUDA graph, a problem class not yet resolved in this process is
 * FA2_ERROR_LAUNCH before anything is done (the capture stays valid): warm up with one call of
 * each class before capturing. Likewise fa2_backward and fa2_forward_with_kvcache. */
int fa2_forward(const fa2_forward_args* args, void* stream);

/* The kernel config fa2_forward would use for args (resolving it by the policy, which may tune), as
 * a NUL-terminated name in buffer. A buffer shorter than the name is FA2_ERROR_ARGUMENT. */
int fa2_forward_config_name(const fa2_forward_args* args, char* buffer, size_t size);

/* The backward of one forward call: Q, K, V, O, LSE as the forward had them, dO (dLoss/dO, shaped like O)
 * in, dQ, dK, dV (shaped like Q, K, V) out. Layout rules as fa2_forward_args. struct_size comes first:
 * set it to sizeof(fa2_backward_args), or start from fa2_backward_args_init(). */
typedef struct fa2_backward_args {
  int struct_size;
  int dtype; /* fa2_dtype */
  const void* q;
  const void* k;
  const void* v;
  const void* o;
  const float* lse; /* [batch, heads_q, seqlen_q] contiguous fp32 (natural log), from the forward */
  const void* dout;
  void* dq;
  void* dk;
  void* dv;
  int batch;
  int heads_q;
  int heads_kv; /* divides heads_q; dK, dV of a KV head sum over its query heads */
  int seqlen_q;
  int seqlen_k;
  int head_dim;
  int64_t q_batch_stride, q_head_stride, q_row_stride;
  int64_t k_batch_stride, k_head_stride, k_row_stride;
  int64_t v_batch_stride, v_head_stride, v_row_stride;
  int64_t o_batch_stride, o_head_stride, o_row_stride;
  int64_t dout_batch_stride, dout_head_stride, dout_row_stride;
  int64_t dq_batch_stride, dq_head_stride, dq_row_stride;
  int64_t dk_batch_stride, dk_head_stride, dk_row_stride;
  int64_t dv_batch_stride, dv_head_stride, dv_row_stride;
  int causal;
  float softmax_scale;  /* the forward's; 0: 1/sqrt(head_dim) */
  int deterministic;    /* nonzero: bitwise-identical dQ, dK, dV from run to run */
  void* workspace;      /* NULL: taken from the driver's stream-ordered allocator; else 256-byte aligned */
  size_t workspace_bytes; /* at least fa2_backward_workspace_size() when workspace is given */
  int tune_policy;        /* fa2_tune_policy */
  const char* cache_path;
  /* Since fa2jit 0.2: the built-in variants (fa2jit/variant.hpp: flash-attn 2.6's window_size, softcap and
   * alibi_slopes). A caller built against an older header passes the older struct_size and gets them off. All
   * zero is off: window nonzero applies window_left and window_right (-1: unbounded side; causal makes the right
   * side 0); softcap > 0 caps the logits (0: off); alibi_slopes is NULL or device fp32 [heads_q] (batch stride 0)
   * or [batch, heads_q] (batch stride >= heads_q, in elements). The forward's values. */
  int window;
  int window_left;
  int window_right;
  float softcap;
  const float* alibi_slopes;
  int64_t alibi_slopes_batch_stride;
  /* Since fa2jit 0.3: user modifications compiled into the kernel (fa2jit/user_mods.hpp). NULL or "" is off.
   * score_mod: a CUDA expression (or body with return) of score, batch, head, q_idx, kv_idx, seqlen_q, seqlen_k
   * and the extra arrays giving the new logit; score_mod_grad: its derivative in score (NULL: derived);
   * mask_mod: a boolean expression of batch, head, q_idx, kv_idx, seqlen_q, seqlen_k. The first num_extra
   * entries of extra_names / extra_types (fa2_extra_type) / extra_data name the read-only device arrays the
   * snippets index. A caller built against an older header passes the older struct_size and gets them off. */
  const char* score_mod;
  const char* score_mod_grad;
  const char* mask_mod;
  int num_extra;
  const char* extra_names[FA2_MAX_EXTRA_ARRAYS];
  int extra_types[FA2_MAX_EXTRA_ARRAYS];
  const void* extra_data[FA2_MAX_EXTRA_ARRAYS];
} fa2_backward_args;

/* Zeroes *args and sets struct_size and tune_policy = FA2_TUNE_DEFAULT. */
void fa2_backward_args_init(fa2_backward_args* args);
/* sizeof(fa2_backward_args) as the library was built, to check a binding's layout. */
int fa2_backward_args_size(void);

/* dQ, dK, dV enqueued on `stream` (three kernels), in the calling thread's current CUDA context. */
int fa2_backward(const fa2_backward_args* args, void* stream);

/* The kernel config fa2_backward would use for args (resolving it by the policy), as in
 * fa2_forward_config_name. */
int fa2_backward_config_name(const fa2_backward_args* args, char* buffer, size_t size);

/* The bytes of workspace fa2_backward needs for args, in *bytes. */
int fa2_backward_workspace_size(const fa2_backward_args* args, size_t* bytes);

/* New queries against a KV cache (decode, chunked prefill), or a variable-length batch: fa2jit.hpp's
 * KvcacheArgs. The cache is
 * contiguous (k/v strides over [batch, seqlen_k, heads_kv, head_dim]) or, with block_table, paged:
 * [num_pages, page_size, heads_kv, head_dim] with the page stride in k_batch_stride / v_batch_stride.
 * cache_seqlens and block_table are device int32 arrays the library cannot check: lengths above seqlen_k
 * are clamped to it, and block table entries must lie in [0, num_pages) (one outside reads page 0 instead and is
 * never written: nothing outside the cache is touched, but the result is wrong). struct_size comes first:
 * set it to sizeof(fa2_kvcache_args), or start from fa2_kvcache_args_init(). */
typedef struct fa2_kvcache_args {
  int struct_size;
  int dtype; /* fa2_dtype */
  const void* q;
  const void* k; /* k_cache */
  const void* v; /* v_cache */
  void* o;
  float* lse;               /* NULL, or [batch, heads_q, seqlen_q] contiguous fp32 (natural log) */
  const int* cache_seqlens; /* NULL (seqlen_k keys each), or [batch] */
  const int* block_table;   /* NULL (contiguous cache), or [batch, block_table_stride] */
  int block_table_stride;
  int page_size; /* 16, 32, 64, 128 or 256 with a block table; 0 without */
  int num_pages;
  const int* cu_seqlens_q; /* NULL, or [batch + 1] row offsets of varlen q and o ([total_q, heads, head_dim]) */
  const int* cu_seqlens_k; /* NULL, or [batch + 1] row offsets of varlen k and v (no block table) */
  int total_q;             /* with cu_seqlens_q: rows of q; lse is then [heads_q, total_q] */
  /* NULL, or new keys and values [batch, seqlen_new, heads_kv, head_dim] written into the cache at rows
   * cache_seqlens[b] .. + seqlen_new - 1 before attending, and attended to (cache_seqlens is not changed;
   * needs cache_seqlens, not cu_seqlens_k; rows at or past seqlen_k are not written). */
  const void* k_new;
  const void* v_new;
  int seqlen_new; /* 0 without k_new */
  int64_t k_new_batch_stride, k_new_head_stride, k_new_row_stride;
  int64_t v_new_batch_stride, v_new_head_stride, v_new_row_stride;
  int batch;
  int heads_q;
  int heads_kv;
  int seqlen_q; /* query rows per sequence, or the most any has with cu_seqlens_q */
  int seqlen_k; /* keys per sequence, or the most any has with cache_seqlens or cu_seqlens_k */
  int head_dim;
  int64_t q_batch_stride, q_head_stride, q_row_stride;
  int64_t k_batch_stride, k_head_stride, k_row_stride;
  int64_t v_batch_stride, v_head_stride, v_row_stride;
  int64_t o_batch_stride, o_head_stride, o_row_stride;
  int causal;          /* nonzero: bottom-right aligned per sequence */
  float softmax_scale; /* 0: 1/sqrt(head_dim) */
  int num_splits;      /* 0: chosen per problem; 1..128: forced */
  void* workspace;     /* NULL: stream-ordered memory from the driver when the keys are split */
  size_t workspace_bytes;
  int tune_policy; /* fa2_tune_policy */
  const char* cache_path;
  /* Since fa2jit 0.2: the built-in variants (fa2jit/variant.hpp: flash-attn 2.6's window_size, softcap and
   * alibi_slopes). A caller built against an older header passes the older struct_size and gets them off. All
   * zero is off: window nonzero applies window_left and window_right (-1: unbounded side; causal makes the right
   * side 0); softcap > 0 caps the logits (0: off); alibi_slopes is NULL or device fp32 [heads_q] (batch stride 0)
   * or [batch, heads_q] (batch stride >= heads_q, in elements). Not supported yet by this entry: anything but all zero is FA2_ERROR_ARGUMENT. */
  int window;
  int window_left;
  int window_right;
  float softcap;
  const float* alibi_slopes;
  int64_t alibi_slopes_batch_stride;
} fa2_kvcache_args;

/* Zeroes *args and sets struct_size and tune_policy = FA2_TUNE_DEFAULT. */
void fa2_kvcache_args_init(fa2_kvcache_args* args);
/* sizeof(fa2_kvcache_args) as the library was built, to check a binding's layout. */
int fa2_kvcache_args_size(void);

/* O (and LSE) for args' queries against its cache, enqueued on `stream` (one kernel, two when split). */
int fa2_forward_with_kvcache(const fa2_kvcache_args* args, void* stream);

/* The kernel config fa2_forward_with_kvcache would use for args, as in fa2_forward_config_name. */
int fa2_kvcache_config_name(const fa2_kvcache_args* args, char* buffer, size_t size);

/* The bytes of workspace fa2_forward_with_kvcache needs for args (0 when it splits nothing), in *bytes. */
int fa2_kvcache_workspace_size(const fa2_kvcache_args* args, size_t* bytes);

/* The message of the last failed call on this thread; "" after a successful one. Valid until the
 * thread's next fa2 call. */
const char* fa2_last_error(void);
/* "argument", "compile", ... for a status; "unknown" for other values. */
const char* fa2_status_name(int status);

const char* fa2_version(void); /* e.g. "0.1.0" */
int fa2_abi_version(void);     /* FA2_ABI_VERSION of the library */

#ifdef __cplusplus
}
#endif

#endif /* FA2JIT_FA2JIT_H */
