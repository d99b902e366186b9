#include "autotune/reference.hpp"

#include <fmt/format.h>

#include <map>
#include <memory>
#include <mutex>

#include "codegen/snippet_source.hpp"
#include "common/error.hpp"
#include "common/variant.hpp"
#include "fa2/variant/reference_variant.h"
#include "runtime/driver.hpp"
#include "runtime/params_builder.hpp"
#include "runtime/context_device.hpp"
#include "runtime/module.hpp"
#include "runtime/nvrtc_compiler.hpp"
#include "runtime/user_mods_launch.hpp"

namespace fa2 {

struct Reference::Kernels {
  Module module;
  CUfunction forward = nullptr;
  CUfunction backward_rows = nullptr;
  CUfunction backward_keys = nullptr;
  CUfunction store_16bit = nullptr;
  CUfunction fill = nullptr;
  int max_smem = 0;  // dynamic shared memory the row kernels may use
};

namespace {

// The variants of a call by their definition: the effective window (causal decided by effective_mask too).
ReferenceVariant reference_variant(bool causal, const VariantArgs& variant, int seqlen_q, int seqlen_k,
                                   int* effective_causal) {
  const EffectiveMask mask = effective_mask(causal, variant, seqlen_q, seqlen_k);
  *effective_causal = mask.causal;
  ReferenceVariant reference{};
  reference.window = mask.window;
  reference.window_left = mask.left;
  reference.window_right = mask.right;
  reference.softcap = variant.softcap;
  reference.alibi_slopes = variant.alibi_slopes;
  reference.alibi_batch_stride = variant.alibi_slopes_batch_stride;
  return reference;
}

}  // namespace

std::string reference_program(const UserMods& mods) {
  return mods.any() ? "fa2_reference_umod" + mods.digest() : "fa2_reference";
}

std::string reference_source(const UserMods& mods) {
  // With snippets, their struct (after the header it builds on) names the reference's FA2_REFERENCE_USER_MODS.
  const std::string user_mods =
      mods.any() ? "#include \"fa2/variant/user_mods.cuh\"\n" +
                       user_mods_struct(mods, reference_program(mods) + ".cu", 2) + "#define FA2_REFERENCE_USER_MODS " +
                       kUserModsType + "\n"
                 : std::string();
  return user_mods + "#include \"fa2/reference.cuh\"\n#include \"fa2/bwd/bwd_reference.cuh\"\n";
}

Reference::Reference(std::unique_ptr<Kernels> kernels) : kernels_(std::move(kernels)) {}
Reference::~Reference() = default;

const Reference& Reference::current() { return current(UserMods{}); }

const Reference& Reference::current(const UserMods& mods) {
  static std::mutex mutex;
  // Per context, and per user modifications: their snippets are compiled into the reference kernels.
  static std::map<std::pair<CUcontext, std::string>, std::unique_ptr<Reference>> by_context;

  const CUcontext context = driver::current_context();
  const std::pair<CUcontext, std::string> key{context, mods.any() ? mods.digest() : std::string()};
  std::lock_guard<std::mutex> lock(mutex);
  auto found = by_context.find(key);
  if (found != by_context.end()) return *found->second;

  const ContextDevice& device = context_device(context);
  if (!device.arch)
    throw Error(Stage::Driver, "Reference", fmt::format("no reference kernels for compute capability {}.{}",
                                                        device.info.cc_major, device.info.cc_minor));
  auto kernels = std::make_unique<Kernels>();
  CompiledKernel compiled = compile_source(reference_source(mods), reference_program(mods), *device.arch);
  kernels->module = Module::load(compiled.cubin);
  kernels->forward = kernels->module.function("fa2_reference_forward");
  kernels->backward_rows = kernels->module.function("fa2_reference_backward_rows");
  kernels->backward_keys = kernels->module.function("fa2_reference_backward_keys");
  kernels->store_16bit = kernels->module.function("fa2_reference_store_16bit");
  kernels->fill = kernels->module.function("fa2_fill_random");
  kernels->max_smem = device.info.max_smem_optin - 1024;  // the static reduction scratch needs a little
  for (CUfunction row_kernel : {kernels->forward, kernels->backward_rows})
    driver::check(driver::api().FuncSetAttribute(row_kernel, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                                 kernels->max_smem),
                  "cuFuncSetAttribute(reference row kernel)");
  std::unique_ptr<Reference> reference(new Reference(std::move(kernels)));
  return *by_context.emplace(key, std::move(reference)).first->second;
}

const Reference::Kernels& Reference::kernels_for(const VariantArgs& variant) const {
  const UserMods mods = user_mods_of(variant);
  return mods.any() ? *Reference::current(mods).kernels_ : *kernels_;
}

void Reference::fill_random(void* out, long long count, DType dtype, std::uint64_t seed) const {
  CUdeviceptr pointer = reinterpret_cast<CUdeviceptr>(out);
  unsigned long long seed_arg = seed;
  int bf16 = dtype == DType::bf16;
  void* args[] = {&pointer, &count, &seed_arg, &bf16};
  driver::check(driver::api().LaunchKernel(kernels_->fill, 1024, 1, 1, 256, 1, 1, 0, nullptr, args, nullptr),
                "cuLaunchKernel(fa2_fill_random)");
}

void Reference::forward(const FwdArgs& args, const DeviceBuffer& o_ref, const DeviceBuffer& lse_ref) const {
  const int smem = (args.head_dim + args.seqlen_k) * static_cast<int>(sizeof(float));
  if (smem > kernels_->max_smem)
    throw Error(Stage::Argument, "Reference::forward",
                fmt::format("seqlen_k {} is too long for the reference kernel (scores of one row live in shared "
                            "memory: at most {} keys here)",
                            args.seqlen_k, kernels_->max_smem / 4 - args.head_dim));
  FwdParams params = make_fwd_params(args);
  int head_dim = args.head_dim;
  int causal = 0;
  ReferenceVariant variant = reference_variant(args.causal, args.variant, args.seqlen_q, args.seqlen_k, &causal);
  int bf16 = args.dtype == DType::bf16;
  CUdeviceptr o_pointer = o_ref.address();
  CUdeviceptr lse_pointer = lse_ref.address();
  UserModParams user = make_user_mod_params(args.variant, params.softmax_scale);
  void* kernel_args[] = {&params, &head_dim, &causal, &bf16, &o_pointer, &lse_pointer, &variant, &user};
  const Kernels& kernels = kernels_for(args.variant);
  driver::check(driver::api().LaunchKernel(kernels.forward, static_cast<unsigned>(args.seqlen_q),
                                           static_cast<unsigned>(args.heads_q), static_cast<unsigned>(args.batch),
                                           128, 1, 1, static_cast<unsigned>(smem), nullptr, kernel_args, nullptr),
                "cuLaunchKernel(fa2_reference_forward)");
  driver::check(driver::api().CtxSynchronize(), "cuCtxSynchronize(fa2_reference_forward)");
}

void Reference::backward(const BwdArgs& args, const DeviceBuffer& o_ref, const DeviceBuffer& dq_ref,
                         const DeviceBuffer& dk_ref, const DeviceBuffer& dv_ref) const {
  const int smem = (2 * args.head_dim + args.seqlen_k) * static_cast<int>(sizeof(float));
  if (smem > kernels_->max_smem)
    throw Error(Stage::Argument, "Reference::backward",
                fmt::format("seqlen_k {} is too long for the reference kernel (at most {} keys here)", args.seqlen_k,
                            kernels_->max_smem / 4 - 2 * args.head_dim));
  // P and dS of every (query, key) pair: the two kernels' hand-over.
  const long long pairs = 1ll * args.batch * args.heads_q * args.seqlen_q * args.seqlen_k;
  DeviceBuffer p_rows(pairs * 4), ds_rows(pairs * 4);
  BwdParams params = make_bwd_params(args, nullptr, 1, 0);  // the workspace and the grid order are not used here
  int head_dim = args.head_dim;
  int causal = 0;
  ReferenceVariant variant = reference_variant(args.causal, args.variant, args.seqlen_q, args.seqlen_k, &causal);
  int bf16 = args.dtype == DType::bf16;
  CUdeviceptr o_pointer = o_ref.address(), dq_pointer = dq_ref.address(), dk_pointer = dk_ref.address(),
              dv_pointer = dv_ref.address(), p_pointer = p_rows.address(), ds_pointer = ds_rows.address();
  UserModParams user = make_user_mod_params(args.variant, params.softmax_scale);
  void* row_args[] = {&params, &head_dim, &causal, &bf16, &o_pointer, &dq_pointer, &p_pointer, &ds_pointer,
                      &variant, &user};
  const Kernels& kernels = kernels_for(args.variant);
  driver::check(driver::api().LaunchKernel(kernels.backward_rows, static_cast<unsigned>(args.seqlen_q),
                                           static_cast<unsigned>(args.heads_q), static_cast<unsigned>(args.batch),
                                           128, 1, 1, static_cast<unsigned>(smem), nullptr, row_args, nullptr),
                "cuLaunchKernel(fa2_reference_backward_rows)");
  void* key_args[] = {&params, &head_dim, &bf16, &p_pointer, &ds_pointer, &dk_pointer, &dv_pointer};
  driver::check(driver::api().LaunchKernel(kernels.backward_keys, static_cast<unsigned>(args.seqlen_k),
                                           static_cast<unsigned>(args.heads_kv), static_cast<unsigned>(args.batch),
                                           128, 1, 1, 0, nullptr, key_args, nullptr),
                "cuLaunchKernel(fa2_reference_backward_keys)");
  driver::check(driver::api().CtxSynchronize(), "cuCtxSynchronize(reference backward)");
}

void Reference::store_16bit(const DeviceBuffer& src, void* dst, int batch, int heads, int seqlen, int head_dim,
                            const Strides& strides, DType dtype) const {
  CUdeviceptr src_pointer = src.address();
  CUdeviceptr dst_pointer = reinterpret_cast<CUdeviceptr>(dst);
  long long batch_stride = strides.batch, head_stride = strides.head, row_stride = strides.row;
  int bf16 = dtype == DType::bf16;
  void* kernel_args[] = {&src_pointer, &dst_pointer, &head_dim, &batch_stride, &head_stride, &row_stride, &bf16};
  driver::check(driver::api().LaunchKernel(kernels_->store_16bit, static_cast<unsigned>(seqlen),
                                           static_cast<unsigned>(heads), static_cast<unsigned>(batch), 128, 1, 1, 0,
                                           nullptr, kernel_args, nullptr),
                "cuLaunchKernel(fa2_reference_store_16bit)");
}

}  // namespace fa2
