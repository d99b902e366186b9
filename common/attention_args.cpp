#include "common/attention_args.hpp"

namespace fa2 {

Strides bshd_strides(int seqlen, int heads, int head_dim) {
  return {static_cast<long long>(seqlen) * heads * head_dim, head_dim, static_cast<long long>(heads) * head_dim};
}

Strides bhsd_strides(int seqlen, int heads, int head_dim) {
  return {static_cast<long long>(heads) * seqlen * head_dim, static_cast<long long>(seqlen) * head_dim, head_dim};
}

const char* tune_policy_name(TunePolicy policy) {
  switch (policy) {
    case TunePolicy::on_first_use: return "on-first-use";
    case TunePolicy::heuristic: return "heuristic";
    case TunePolicy::cache_only: return "cache-only";
  }
  return "unknown";
}

std::optional<TunePolicy> parse_tune_policy(const std::string& text) {
  for (TunePolicy policy : {TunePolicy::on_first_use, TunePolicy::heuristic, TunePolicy::cache_only})
    if (text == tune_policy_name(policy)) return policy;
  return std::nullopt;
}

}  // namespace fa2
