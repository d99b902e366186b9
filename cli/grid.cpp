#include "cli/grid.hpp"

#include <fmt/core.h>

#include "autotune/presets.hpp"
#include "common/error.hpp"

namespace fa2::cli {

namespace {

// "on" / "off" / "both" as the mask values to tune.
std::vector<bool> causal_values(const std::string& causal) {
  if (causal == "on") return {true};
  if (causal == "off") return {false};
  if (causal == "both") return {false, true};
  throw Error(Stage::Argument, "", fmt::format("--causal must be on, off or both, got '{}'", causal));
}

// The families a grid point becomes, forward first. family_of() rejects an unknown name and
// --deterministic with the forward alone; with "both" it applies to the backward problems.
std::vector<Family> families(const PassFlags& pass) {
  if (pass.pass == "both") return {Family::fwd, Family::bwd};
  return {family_of(pass)};
}

}  // namespace

void add_grid_options(CLI::App& sub, GridOptions& grid) {
  add_pass_flags(&sub, grid.pass, /*allow_both=*/true);
  // Lists take either form: `--seqlen 1024,4096` or `--seqlen 1024 4096`.
  auto* model = sub.add_option("--model", grid.model,
                               "Model preset: sets heads, heads-kv and head dim")
                    ->check(parsed_by(find_model_preset, "model", model_preset_names()));
  sub.add_option("--head-dim", grid.head_dims, "Head dimensions (default: 128)")
      ->check(head_dim_validator())
      ->delimiter(',')
      ->excludes(model);
  sub.add_option("--dtype", grid.dtypes, "Element types (default: bf16)")
      ->check(parsed_by(parse_dtype, "dtype", "fp16|bf16"))
      ->delimiter(',');
  sub.add_option("--causal", grid.causal, "Mask: on (causal), off (full) or both")
      ->check(CLI::IsMember({"on", "off", "both"}))
      ->capture_default_str();
  sub.add_option("--batch", grid.batch, "Batch size")->check(positive_int())->capture_default_str();
  sub.add_option("--heads", grid.heads, "Query heads")->check(positive_int())->capture_default_str()->excludes(model);
  sub.add_option("--heads-kv", grid.heads_kv, "Key/value heads (default: same as --heads; fewer is GQA)")
      ->check(positive_int())
      ->excludes(model);
  sub.add_option("--seqlen", grid.seqlens, "Query sequence lengths; also the key lengths without --seqlen-k "
                                            "(default: 1024,4096)")
      ->check(positive_int())
      ->delimiter(',');
  add_variant_flags(&sub, grid.pass);
  sub.add_option("--seqlen-k", grid.seqlens_k, "Key/value sequence lengths, each paired with every --seqlen")
      ->check(positive_int())
      ->delimiter(',');
}

std::vector<ProblemShape> grid_shapes(const GridOptions& grid) {
  ProblemShape base;
  base.batch = grid.batch;
  base.heads_q = grid.heads;
  base.heads_kv = grid.heads_kv > 0 ? grid.heads_kv : grid.heads;
  std::vector<int> head_dims = grid.head_dims;
  if (!grid.model.empty()) {
    const auto preset = find_model_preset(grid.model);
    if (!preset)
      throw Error(Stage::Argument, "", fmt::format("unknown model '{}' (expected {})", grid.model, model_preset_names()));
    base.heads_q = preset->heads_q;
    base.heads_kv = preset->heads_kv;
    head_dims = {preset->head_dim};
  }
  if (base.heads_q % base.heads_kv != 0)
    throw Error(Stage::Argument, "",
                fmt::format("--heads {} is not a multiple of --heads-kv {}", base.heads_q, base.heads_kv));

  const std::vector<Family> passes = families(grid.pass);

  std::vector<ProblemShape> shapes;
  std::vector<ProblemClass> seen;
  // One problem per family of the grid point, so `both` keeps each forward next to its backward.
  auto add = [&](ProblemShape shape) {
    for (const Family family : passes) {
      shape.family = family;
      shape.deterministic = family == Family::bwd && grid.pass.deterministic;
      const ProblemClass problem = ProblemClass::of(shape);
      bool known = false;
      for (const ProblemClass& other : seen) known = known || other == problem;
      if (known) continue;
      seen.push_back(problem);
      shapes.push_back(shape);
    }
  };
  for (const std::string& dtype_text : grid.dtypes) {
    const auto dtype = parse_dtype(dtype_text);
    if (!dtype) throw Error(Stage::Argument, "", fmt::format("unknown dtype '{}' (expected fp16|bf16)", dtype_text));
    for (int head_dim : head_dims)
      for (bool causal : causal_values(grid.causal))
        for (int seqlen_q : grid.seqlens) {
          ProblemShape shape = base;
          shape.dtype = *dtype;
          shape.head_dim = head_dim;
          shape.causal = causal;
          shape.seqlen_q = seqlen_q;
          auto add_with_variant = [&](ProblemShape point) {
            point.set_variant(causal, variant_args_of(grid.pass), grid.pass.alibi);
            add(point);
          };
          if (grid.seqlens_k.empty()) {
            shape.seqlen_k = seqlen_q;
            add_with_variant(shape);
          }
          for (int seqlen_k : grid.seqlens_k) {
            shape.seqlen_k = seqlen_k;
            add_with_variant(shape);
          }
        }
  }
  return shapes;
}

}  // namespace fa2::cli
