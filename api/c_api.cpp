// The C ABI (include/fa2jit/fa2jit.h) over the C++ API. Exceptions must not cross an extern "C"
// boundary (that is undefined behaviour for C and ctypes callers), so every entry point catches
// everything and turns it into a status plus a thread-local message.
#include "fa2jit/fa2jit.h"

#include <fmt/format.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <new>
#include <string>
#include <type_traits>

#include "fa2jit/fa2jit.hpp"

// The version string comes from the build (the project version in CMakeLists.txt).
#ifndef FA2JIT_VERSION
#error "FA2JIT_VERSION comes from CMakeLists.txt (project version)"
#endif

namespace {

thread_local std::string t_last_error;
// Used when recording the message itself runs out of memory.
thread_local const char* t_fallback_error = nullptr;

int status_of(fa2::Stage stage) {
  switch (stage) {
    case fa2::Stage::Config: return FA2_ERROR_CONFIG;
    case fa2::Stage::Codegen: return FA2_ERROR_CODEGEN;
    case fa2::Stage::Compile: return FA2_ERROR_COMPILE;
    case fa2::Stage::Driver: return FA2_ERROR_DRIVER;
    case fa2::Stage::Launch: return FA2_ERROR_LAUNCH;
    case fa2::Stage::Argument: return FA2_ERROR_ARGUMENT;
    case fa2::Stage::Cache: return FA2_ERROR_CACHE;
    case fa2::Stage::Tune: return FA2_ERROR_TUNE;
  }
  return FA2_ERROR_INTERNAL;
}

int record_failure(int status, const char* message) noexcept {
  try {
    t_last_error = message;
    t_fallback_error = nullptr;
  } catch (...) {
    t_fallback_error = "fa2jit: out of host memory while recording an error";
  }
  return status;
}

// A C caller has no other way to see an NVRTC log, so it goes into the message.
std::string describe(const fa2::Error& error) {
  std::string text = error.what();
  if (!error.options().empty()) {
    text += "\nNVRTC options:";
    for (const std::string& option : error.options()) text += " " + option;
  }
  if (!error.log().empty()) text += "\n" + error.log();
  return text;
}

template <class Body>
int guarded(Body&& body) noexcept {
  try {
    body();
    t_last_error.clear();
    t_fallback_error = nullptr;
    return FA2_OK;
  } catch (const fa2::Error& error) {
    int status = status_of(error.stage());
    try {
      return record_failure(status, describe(error).c_str());
    } catch (...) {
      return record_failure(status, error.what());
    }
  } catch (const std::bad_alloc&) {
    return record_failure(FA2_ERROR_INTERNAL, "fa2jit internal error: out of host memory");
  } catch (const std::exception& error) {
    return record_failure(FA2_ERROR_INTERNAL, (std::string("fa2jit internal error: ") + error.what()).c_str());
  } catch (...) {
    return record_failure(FA2_ERROR_INTERNAL, "fa2jit internal error: an unknown exception");
  }
}

[[noreturn]] void reject(const char* api_call, const std::string& message) {
  throw fa2::Error(fa2::Stage::Argument, api_call, message);
}

fa2::Strides strides(int64_t batch, int64_t head, int64_t row) { return {batch, head, row}; }

// The size of a C struct before the variant fields were appended (fa2jit 0.1's headers): callers built
// against them pass it as struct_size and get every variant off.
template <class CArgs>
constexpr std::size_t size_before_variants() {
  return offsetof(CArgs, window);
}

// The size before the user modifications' fields (fa2jit 0.2's headers), for the structs that have them.
template <class CArgs>
constexpr std::size_t size_before_user_mods() {
  if constexpr (std::is_same_v<CArgs, fa2_kvcache_args>)
    return sizeof(CArgs);
  else
    return offsetof(CArgs, score_mod);
}

// `in` as this library's struct: a copy of the caller's struct_size bytes, with fields it does not have left
// at their defaults (all zero: off). Any size but the current, the pre-user-mods and the pre-variant one is
// refused.
template <class CArgs>
CArgs widened(const CArgs* in, const char* struct_name, const char* api_call) {
  if (in == nullptr) reject(api_call, "args is a null pointer");
  if (in->struct_size == static_cast<int>(sizeof(CArgs))) return *in;
  const std::size_t known = static_cast<std::size_t>(in->struct_size);
  if (known != size_before_variants<CArgs>() && known != size_before_user_mods<CArgs>())
    reject(api_call, fmt::format("args->struct_size is {} but this library's {} is {} bytes ({} before the user "
                                 "modifications' fields, {} before the variant fields; ABI version {}): set it to "
                                 "sizeof({}) from the matching fa2jit.h",
                                 in->struct_size, struct_name, sizeof(CArgs), size_before_user_mods<CArgs>(),
                                 size_before_variants<CArgs>(), FA2_ABI_VERSION, struct_name));
  CArgs full;
  std::memset(&full, 0, sizeof(full));
  std::memcpy(&full, in, known);
  return full;
}

// The user modifications of a widened forward or backward struct.
template <class CArgs>
void convert_user_mods(const CArgs* in, const char* api_call, fa2::VariantArgs& variant) {
  if (in->score_mod != nullptr) variant.score_mod = in->score_mod;
  if (in->score_mod_grad != nullptr) variant.score_mod_grad = in->score_mod_grad;
  if (in->mask_mod != nullptr) variant.mask_mod = in->mask_mod;
  if (in->num_extra < 0 || in->num_extra > FA2_MAX_EXTRA_ARRAYS)
    reject(api_call, fmt::format("num_extra {} must be in [0, {}]", in->num_extra, FA2_MAX_EXTRA_ARRAYS));
  for (int i = 0; i < in->num_extra; ++i) {
    fa2::ExtraArray extra;
    if (in->extra_names[i] == nullptr) reject(api_call, fmt::format("extra_names[{}] is a null pointer", i));
    extra.name = in->extra_names[i];
    switch (in->extra_types[i]) {
      case FA2_EXTRA_INT32: extra.type = fa2::ExtraType::i32; break;
      case FA2_EXTRA_INT64: extra.type = fa2::ExtraType::i64; break;
      case FA2_EXTRA_FLOAT32: extra.type = fa2::ExtraType::f32; break;
      case FA2_EXTRA_UINT8: extra.type = fa2::ExtraType::u8; break;
      default:
        reject(api_call, fmt::format("extra_types[{}] {} is not a fa2_extra_type (0 int32, 1 int64, 2 float32, "
                                     "3 uint8)",
                                     i, in->extra_types[i]));
    }
    extra.data = in->extra_data[i];
    variant.extra.push_back(extra);
  }
}

// What the C structs share and their C++ forms cannot express (the enums, the scale's sentinel, the window's
// on switch), checked here; the rest is checked by forward() and backward() themselves. `in` has been widened.
template <class CArgs, class Args>
void convert_common(const CArgs* in, const char* api_call, Args& args) {
  switch (in->dtype) {
    case FA2_DTYPE_FP16: args.dtype = fa2::DType::fp16; break;
    case FA2_DTYPE_BF16: args.dtype = fa2::DType::bf16; break;
    default:
      reject(api_call, fmt::format("dtype {} is not FA2_DTYPE_FP16 (0) or FA2_DTYPE_BF16 (1)", in->dtype));
  }
  switch (in->tune_policy) {
    case FA2_TUNE_DEFAULT: break;
    case FA2_TUNE_ON_FIRST_USE: args.tune_policy = fa2::TunePolicy::on_first_use; break;
    case FA2_TUNE_HEURISTIC: args.tune_policy = fa2::TunePolicy::heuristic; break;
    case FA2_TUNE_CACHE_ONLY: args.tune_policy = fa2::TunePolicy::cache_only; break;
    default:
      reject(api_call, fmt::format("tune_policy {} is not -1 (default), 0 (on-first-use), 1 (heuristic) or "
                                   "2 (cache-only)",
                                   in->tune_policy));
  }
  if (in->softmax_scale != 0.f) {
    if (!(std::isfinite(in->softmax_scale) && in->softmax_scale > 0.f))
      reject(api_call, fmt::format("softmax_scale {} must be finite and positive, or 0 for 1/sqrt(head_dim)",
                                   in->softmax_scale));
    args.softmax_scale = in->softmax_scale;
  }
  args.batch = in->batch;
  args.heads_q = in->heads_q;
  args.heads_kv = in->heads_kv;
  args.seqlen_q = in->seqlen_q;
  args.seqlen_k = in->seqlen_k;
  args.head_dim = in->head_dim;
  args.q_strides = strides(in->q_batch_stride, in->q_head_stride, in->q_row_stride);
  args.k_strides = strides(in->k_batch_stride, in->k_head_stride, in->k_row_stride);
  args.v_strides = strides(in->v_batch_stride, in->v_head_stride, in->v_row_stride);
  args.o_strides = strides(in->o_batch_stride, in->o_head_stride, in->o_row_stride);
  args.causal = in->causal != 0;
  if (in->cache_path != nullptr) args.cache_path = in->cache_path;
  if (in->window != 0) {
    args.variant.window_left = in->window_left;
    args.variant.window_right = in->window_right;
  }
  args.variant.softcap = in->softcap;
  args.variant.alibi_slopes = in->alibi_slopes;
  args.variant.alibi_slopes_batch_stride = in->alibi_slopes_batch_stride;
}

fa2::FwdArgs to_fwd_args(const fa2_forward_args* caller, const char* api_call) {
  const fa2_forward_args full = widened(caller, "fa2_forward_args", api_call);
  const fa2_forward_args* in = &full;
  fa2::FwdArgs args;
  convert_common(in, api_call, args);
  convert_user_mods(in, api_call, args.variant);
  args.q = in->q;
  args.k = in->k;
  args.v = in->v;
  args.o = in->o;
  args.lse = in->lse;
  return args;
}

fa2::BwdArgs to_bwd_args(const fa2_backward_args* caller, const char* api_call) {
  const fa2_backward_args full = widened(caller, "fa2_backward_args", api_call);
  const fa2_backward_args* in = &full;
  fa2::BwdArgs args;
  convert_common(in, api_call, args);
  convert_user_mods(in, api_call, args.variant);
  args.q = in->q;
  args.k = in->k;
  args.v = in->v;
  args.o = in->o;
  args.lse = in->lse;
  args.dout = in->dout;
  args.dq = in->dq;
  args.dk = in->dk;
  args.dv = in->dv;
  args.dout_strides = strides(in->dout_batch_stride, in->dout_head_stride, in->dout_row_stride);
  args.dq_strides = strides(in->dq_batch_stride, in->dq_head_stride, in->dq_row_stride);
  args.dk_strides = strides(in->dk_batch_stride, in->dk_head_stride, in->dk_row_stride);
  args.dv_strides = strides(in->dv_batch_stride, in->dv_head_stride, in->dv_row_stride);
  args.deterministic = in->deterministic != 0;
  args.workspace = in->workspace;
  args.workspace_bytes = in->workspace_bytes;
  return args;
}

fa2::KvcacheArgs to_kvcache_args(const fa2_kvcache_args* caller, const char* api_call) {
  const fa2_kvcache_args full = widened(caller, "fa2_kvcache_args", api_call);
  const fa2_kvcache_args* in = &full;
  fa2::KvcacheArgs args;
  convert_common(in, api_call, args);
  args.q = in->q;
  args.k_cache = in->k;
  args.v_cache = in->v;
  args.o = in->o;
  args.lse = in->lse;
  args.cache_seqlens = in->cache_seqlens;
  args.block_table = in->block_table;
  args.block_table_stride = in->block_table_stride;
  args.page_size = in->page_size;
  args.num_pages = in->num_pages;
  args.cu_seqlens_q = in->cu_seqlens_q;
  args.cu_seqlens_k = in->cu_seqlens_k;
  args.total_q = in->total_q;
  args.k_new = in->k_new;
  args.v_new = in->v_new;
  args.seqlen_new = in->seqlen_new;
  args.k_new_strides = strides(in->k_new_batch_stride, in->k_new_head_stride, in->k_new_row_stride);
  args.v_new_strides = strides(in->v_new_batch_stride, in->v_new_head_stride, in->v_new_row_stride);
  args.num_splits = in->num_splits;
  args.workspace = in->workspace;
  args.workspace_bytes = in->workspace_bytes;
  return args;
}

// The kernel name of a pass's config into a caller's buffer (checked for null before the config was resolved).
void copy_name(const std::string& name, char* buffer, size_t size, const char* api_call) {
  if (size < name.size() + 1)
    reject(api_call, fmt::format("buffer of {} bytes is too small for '{}' ({} bytes with the NUL)", size, name,
                                 name.size() + 1));
  std::memcpy(buffer, name.c_str(), name.size() + 1);
}

}  // namespace

extern "C" {

void fa2_forward_args_init(fa2_forward_args* args) {
  if (args == nullptr) return;
  std::memset(args, 0, sizeof(*args));
  args->struct_size = static_cast<int>(sizeof(*args));
  args->tune_policy = FA2_TUNE_DEFAULT;
}

int fa2_forward_args_size(void) { return static_cast<int>(sizeof(fa2_forward_args)); }

int fa2_forward(const fa2_forward_args* args, void* stream) {
  return guarded([&] { fa2::forward(to_fwd_args(args, "fa2_forward"), static_cast<CUstream_st*>(stream)); });
}

int fa2_forward_config_name(const fa2_forward_args* args, char* buffer, size_t size) {
  return guarded([&] {
    if (buffer == nullptr) reject("fa2_forward_config_name", "buffer is a null pointer");
    copy_name(fa2::forward_config(to_fwd_args(args, "fa2_forward_config_name")).name(), buffer, size,
              "fa2_forward_config_name");
  });
}

void fa2_backward_args_init(fa2_backward_args* args) {
  if (args == nullptr) return;
  std::memset(args, 0, sizeof(*args));
  args->struct_size = static_cast<int>(sizeof(*args));
  args->tune_policy = FA2_TUNE_DEFAULT;
}

int fa2_backward_args_size(void) { return static_cast<int>(sizeof(fa2_backward_args)); }

int fa2_backward(const fa2_backward_args* args, void* stream) {
  return guarded([&] { fa2::backward(to_bwd_args(args, "fa2_backward"), static_cast<CUstream_st*>(stream)); });
}

int fa2_backward_config_name(const fa2_backward_args* args, char* buffer, size_t size) {
  return guarded([&] {
    if (buffer == nullptr) reject("fa2_backward_config_name", "buffer is a null pointer");
    copy_name(fa2::backward_config(to_bwd_args(args, "fa2_backward_config_name")).name(), buffer, size,
              "fa2_backward_config_name");
  });
}

int fa2_backward_workspace_size(const fa2_backward_args* args, size_t* bytes) {
  return guarded([&] {
    if (bytes == nullptr) reject("fa2_backward_workspace_size", "bytes is a null pointer");
    *bytes = fa2::backward_workspace_bytes(to_bwd_args(args, "fa2_backward_workspace_size"));
  });
}

void fa2_kvcache_args_init(fa2_kvcache_args* args) {
  if (args == nullptr) return;
  std::memset(args, 0, sizeof(*args));
  args->struct_size = static_cast<int>(sizeof(*args));
  args->tune_policy = FA2_TUNE_DEFAULT;
}

int fa2_kvcache_args_size(void) { return static_cast<int>(sizeof(fa2_kvcache_args)); }

int fa2_forward_with_kvcache(const fa2_kvcache_args* args, void* stream) {
  return guarded([&] {
    fa2::forward_with_kvcache(to_kvcache_args(args, "fa2_forward_with_kvcache"), static_cast<CUstream_st*>(stream));
  });
}

int fa2_kvcache_config_name(const fa2_kvcache_args* args, char* buffer, size_t size) {
  return guarded([&] {
    if (buffer == nullptr) reject("fa2_kvcache_config_name", "buffer is a null pointer");
    copy_name(fa2::kvcache_config(to_kvcache_args(args, "fa2_kvcache_config_name")).name(), buffer, size,
              "fa2_kvcache_config_name");
  });
}

int fa2_kvcache_workspace_size(const fa2_kvcache_args* args, size_t* bytes) {
  return guarded([&] {
    if (bytes == nullptr) reject("fa2_kvcache_workspace_size", "bytes is a null pointer");
    *bytes = fa2::kvcache_workspace_bytes(to_kvcache_args(args, "fa2_kvcache_workspace_size"));
  });
}

const char* fa2_last_error(void) { return t_fallback_error != nullptr ? t_fallback_error : t_last_error.c_str(); }

const char* fa2_status_name(int status) {
  switch (status) {
    case FA2_OK: return "ok";
    case FA2_ERROR_ARGUMENT: return "argument";
    case FA2_ERROR_CONFIG: return "config";
    case FA2_ERROR_COMPILE: return "compile";
    case FA2_ERROR_DRIVER: return "driver";
    case FA2_ERROR_LAUNCH: return "launch";
    case FA2_ERROR_CACHE: return "cache";
    case FA2_ERROR_TUNE: return "tune";
    case FA2_ERROR_CODEGEN: return "codegen";
    case FA2_ERROR_INTERNAL: return "internal";
  }
  return "unknown";
}

const char* fa2_version(void) { return FA2JIT_VERSION; }

int fa2_abi_version(void) { return FA2_ABI_VERSION; }

}  // extern "C"
