// The fa2-tune subcommands. Each lives in its own file as an Options struct, a setup function that
// registers it with CLI11, and a run function that does the work and returns the exit code.
// Parsing and running are kept apart: setup hands main() a Command, and main() runs the one given
// once parsing has succeeded, so the errors of every subcommand become exit codes in one place.
#pragma once

#include <CLI/CLI.hpp>

#include <charconv>
#include <functional>
#include <string>
#include <vector>

#include "codegen/tile_config.hpp"

namespace fa2::cli {

// Exit codes shared by all subcommands; CLI11 parse errors keep CLI11's own (all above 100).
enum ExitCode : int {
  kOk = 0,
  kError = 1,          // an fa2::Error or any other failure
  kInvalidConfig = 2,  // the requested TileConfig does not validate
  kCheckFailed = 3,    // a correctness check ran and the kernel's output was wrong
  kGpuRequired = 4,    // the command runs kernels and no usable driver or GPU was found
  kNotFound = 5,       // the tuning (or cache file) asked for is not there
};

// Flags of the top-level app, readable by every subcommand.
struct GlobalOptions {
  bool verbose = false;  // print the NVRTC log (and other detail) where there is one
  std::string db;        // --db: the cache file; empty: fa2::Cache::default_path(), see cache_path()
};

// A registered subcommand: its CLI11 node, and what to run when it was the one on the command line.
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

// Tile flags of emit and bench; a flag left out (0 or empty) keeps the built-in config's value.
struct TileFlags {
  int block_m = 0;
  int block_n = 0;
  int warps = 0;
  int stages = 0;
  int blocks_per_sm = 0;
  std::string scheme;
  int splits = -1;  // kvc: key splits (0: the launch's heuristic); -1: not given
  bool any() const {
    return block_m > 0 || block_n > 0 || warps > 0 || stages > 0 || blocks_per_sm > 0 || !scheme.empty() ||
           splits >= 0;
  }
};
void add_tile_flags(CLI::App* sub, TileFlags& flags);
// `base` with the given flags applied; an unknown scheme throws fa2::Error (the flag's check catches it first).
TileConfig apply_tile_flags(const TileFlags& flags, TileConfig base);

// --pass: which family's kernels a subcommand works on, "fwd" or "bwd" (tune and build also take "both":
// every grid point as a forward and a backward problem). --deterministic asks a backward for the ordered
// dQ reduction (bitwise-reproducible gradients). Defined in cli/pass_flags.cpp.
struct PassFlags {
  std::string pass = "fwd";
  bool deterministic = false;
  // The built-in variants (add_variant_flags): --window L,R (-1 = unbounded side), --softcap X, --alibi.
  std::string window;
  float softcap = 0.f;
  bool alibi = false;
};
// Registers both flags, and makes the parse reject --deterministic with --pass fwd (a CLI11 error like
// any bad flag). Takes the subcommand's final callback for that check.
void add_pass_flags(CLI::App* sub, PassFlags& flags, bool allow_both = false);
// The one family --pass names; throws fa2::Error for "both", an unknown name, or --deterministic with the forward.
Family family_of(const PassFlags& flags);
// --window L,R, --softcap X and --alibi (emit, check, bench, tune, build): the problem's built-in variants.
void add_variant_flags(CLI::App* sub, PassFlags& flags);
// The window and softcap the flags give as a call's values (slopes are made by whoever runs the problem).
VariantArgs variant_args_of(const PassFlags& flags);
// The variants a kernel for these flags is compiled with (emit: no sequence lengths, so no side is unbounded by them).
Variant variant_of_flags(const PassFlags& flags, bool causal);

// --score-mod, --score-mod-grad, --mask-mod (a snippet, or @file for one read from a file) and --extra NAME:TYPE
// (repeatable): user modifications compiled in (fa2jit/user_mods.hpp). emit only: the other subcommands would
// need the extra arrays' contents. Defined in cli/snippet_flags.cpp.
struct SnippetFlags {
  std::string score_mod;
  std::string score_mod_grad;
  std::string mask_mod;
  std::vector<std::string> extras;
};
void add_snippet_flags(CLI::App* sub, SnippetFlags& flags);
// The user modifications the flags give; throws fa2::Error for an unreadable @file or a bad --extra.
UserMods user_mods_of_flags(const SnippetFlags& flags);

// ---- emit: print the generated source of one config, optionally compile it and report resources.
struct EmitOptions {
  SnippetFlags snippets;
  PassFlags pass;
  int head_dim = 128;
  std::string dtype = "bf16";
  bool causal = false;
  std::string arch = "sm_90a";
  TileFlags tile;  // what is not given comes from fa2::default_config for the problem above
  bool compile = false;
  bool source = false;  // with --compile, print the source before the report
};
Command setup_emit(CLI::App& app, const GlobalOptions& global);
int run_emit(const EmitOptions& options, const GlobalOptions& global);

// ---- check: run the default kernel of a problem on the GPU against the fp32 reference.
// These mirror fa2::CheckSpec's defaults; setup_check copies the spec's own values, so the
// spec stays the one source of what --help shows.
struct CheckOptions {
  PassFlags pass;
  int head_dim = 128;
  std::string dtype = "bf16";
  bool causal = false;
  int batch = 2;
  int heads = 16;
  int heads_kv = 0;  // 0 = not given: same as heads (no GQA)
  int seqlen_q = 1024;
  int seqlen_k = 1024;
  std::string policy = "heuristic";  // how forward() picks the kernel; the others read the --db cache
  int page_size = 0;                 // kvc: a paged cache of this many keys per page; 0: contiguous
};
Command setup_check(CLI::App& app, const GlobalOptions& global);
int run_check(const CheckOptions& options, const GlobalOptions& global);

// ---- The problem grid of `tune` and `build`: every combination of the listed values.
struct GridOptions {
  PassFlags pass;     // fwd, bwd or both; --deterministic applies to the backward problems
  std::string model;  // a preset: sets heads, heads_kv and head dim (which are then not given)
  std::vector<int> head_dims{128};
  std::vector<std::string> dtypes{"bf16"};
  std::string causal = "both";  // on | off | both
  int batch = 1;
  int heads = 16;
  int heads_kv = 0;                 // 0 = not given: same as heads
  std::vector<int> seqlens{1024, 4096};
  std::vector<int> seqlens_k;       // empty: seqlen_k = seqlen_q; else every (seqlen, seqlen_k) pair
};

// ---- tune: tune every problem of a grid on this GPU and store the winners in the cache.
struct TuneCommandOptions {  // not TuneOptions: that is fa2::TuneOptions, which this fills
  GridOptions grid;
  int warmup = 5;
  int repeats = 30;
  int threads = 0;  // compile threads; 0: one per core
  bool force = false;
};
Command setup_tune(CLI::App& app, const GlobalOptions& global);
int run_tune(const TuneCommandOptions& options, const GlobalOptions& global);

// ---- build: compile a grid's search space for one arch into the cache, no GPU needed.
struct BuildOptions {
  GridOptions grid;
  std::string arch;
  int threads = 0;
};
Command setup_build(CLI::App& app, const GlobalOptions& global);
int run_build(const BuildOptions& options, const GlobalOptions& global);

// ---- list: the cache's tunings (or kernels), as tables or JSON.
struct ListOptions {
  bool kernels = false;
  bool json = false;
  std::string pass;  // fwd or bwd: only that family's tunings and kernels; empty: all
};
Command setup_list(CLI::App& app, const GlobalOptions& global);
int run_list(const ListOptions& options, const GlobalOptions& global);

// ---- show: one tuning with every measurement it made.
struct ShowOptions {
  std::string key;  // a tuning key, or a problem key that only one device has tuned
  PassFlags pass;   // the family (and determinism) of a key that does not name its own
  bool json = false;
};
Command setup_show(CLI::App& app, const GlobalOptions& global);
int run_show(const ShowOptions& options, const GlobalOptions& global);

// ---- bench: time the cached winner, the built-in config and FA2's static choice on one shape.
struct BenchOptions {
  PassFlags pass;
  int head_dim = 128;
  std::string dtype = "bf16";
  bool causal = false;
  int batch = 2;
  int heads = 16;
  int heads_kv = 0;  // 0 = not given: same as heads
  int seqlen_q = 1024;
  int seqlen_k = 1024;
  std::string layout = "bshd";
  int warmup = 5;
  int repeats = 30;
  TileFlags tile;  // any given: one more row, the built-in config with these changes
  int page_size = 0;  // kvc: a paged cache of this many keys per page; 0: contiguous
};
Command setup_bench(CLI::App& app, const GlobalOptions& global);
int run_bench(const BenchOptions& options, const GlobalOptions& global);

// ---- export / import / clear / info: whole-cache operations.
struct ExportOptions {
  std::string destination;
};
Command setup_export(CLI::App& app, const GlobalOptions& global);
int run_export(const ExportOptions& options, const GlobalOptions& global);

struct ImportOptions {
  std::string source;
};
Command setup_import(CLI::App& app, const GlobalOptions& global);
int run_import(const ImportOptions& options, const GlobalOptions& global);

struct ClearOptions {
  bool yes = false;
};
Command setup_clear(CLI::App& app, const GlobalOptions& global);
int run_clear(const ClearOptions& options, const GlobalOptions& global);

Command setup_info(CLI::App& app, const GlobalOptions& global);
int run_info(const GlobalOptions& global);

// ---- Flag helpers shared by the subcommand files.

// A validator that accepts what `parse` (one of fa2::parse_dtype/parse_arch/...) accepts, so the
// accepted spellings are the library's and cannot drift from it.
template <class Parse>
CLI::Validator parsed_by(Parse parse, const std::string& what, const std::string& choices) {
  return CLI::Validator(
      [parse, what, choices](std::string& text) -> std::string {
        if (parse(text)) return {};
        return "unknown " + what + " '" + text + "' (expected " + choices + ")";
      },
      choices, what);
}

// The head dims fa2jit supports, listed from fa2::is_supported_head_dim for the error message.
inline std::string supported_head_dims() {
  std::string list;
  for (int d = 1; d <= 1024; ++d) {
    if (!fa2::is_supported_head_dim(d)) continue;
    list += (list.empty() ? "" : ", ") + std::to_string(d);
  }
  return list;
}

// Whole-string integer parse. CLI11 validates before it converts, so validators must reject
// non-numbers themselves to give their own message.
inline bool parse_int(const std::string& text, int& value) {
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  return ec == std::errc() && ptr == end;
}

inline CLI::Validator head_dim_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        int value = 0;
        if (!parse_int(text, value)) return "'" + text + "' is not an integer";
        if (fa2::is_supported_head_dim(value)) return {};
        return "unsupported head dim " + text + " (supported: " + supported_head_dims() + ")";
      },
      "", "HEAD_DIM");
}

// CLI::PositiveNumber's message prints DBL_MAX in full on CLI11 2.1; this one stays short.
inline CLI::Validator positive_int() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        int value = 0;
        if (!parse_int(text, value)) return "'" + text + "' is not an integer";
        return value > 0 ? std::string() : "must be positive, got " + text;
      },
      "POSITIVE", "POSITIVE_INT");
}

// The flags that pick a problem's kernel, shared by emit, check and bench.
inline void add_kernel_flags(CLI::App* sub, int& head_dim, std::string& dtype, bool& causal) {
  sub->add_option("--head-dim", head_dim, "Head dimension")->check(head_dim_validator())->capture_default_str();
  sub->add_option("--dtype", dtype, "Element type")
      ->check(parsed_by(parse_dtype, "dtype", "fp16|bf16"))
      ->capture_default_str();
  sub->add_flag("--causal", causal, "Causal (lower-triangular) mask");
}

// The sizes of one problem, shared by check and bench.
inline void add_size_flags(CLI::App* sub, int& batch, int& heads, int& heads_kv, int& seqlen_q, int& seqlen_k) {
  sub->add_option("--batch", batch, "Batch size")->check(positive_int())->capture_default_str();
  sub->add_option("--heads", heads, "Query heads")->check(positive_int())->capture_default_str();
  sub->add_option("--heads-kv", heads_kv, "Key/value heads (default: same as --heads; fewer is GQA)")
      ->check(positive_int());
  sub->add_option("--seqlen-q", seqlen_q, "Query sequence length")->check(positive_int())->capture_default_str();
  sub->add_option("--seqlen-k", seqlen_k, "Key/value sequence length")->check(positive_int())->capture_default_str();
}

// --page-size: the KV-cache forward's paged cache (0: contiguous). The shape built from it must be a kvc one:
// page_size_for() rejects it for the other families.
inline void add_page_size_flag(CLI::App* sub, int& page_size) {
  sub->add_option("--page-size", page_size, "--pass kvc: keys per page of a paged cache (16, 32, 64, 128, 256); "
                                            "0: a contiguous cache")
      ->check(CLI::IsMember({0, 16, 32, 64, 128, 256}))
      ->capture_default_str();
}
int page_size_for(Family family, int page_size);  // page_size, or fa2::Error when given for a family but kvc

}  // namespace fa2::cli
