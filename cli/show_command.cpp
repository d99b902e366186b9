// fa2-tune show: one tuning and every candidate it measured, fastest first, then the rejected ones
// with the reason: what to read when a winner looks wrong or a config keeps failing. --pass bwd (and
// --deterministic) look a problem key up among the backward tunings without typing their prefix.
#include <fmt/core.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cli/commands.hpp"
#include "cli/json.hpp"
#include "cli/support.hpp"
#include "cli/table.hpp"
#include "common/error.hpp"

namespace fa2::cli {
namespace {

bool ends_with(const std::string& text, const std::string& tail) {
  return text.size() >= tail.size() && text.compare(text.size() - tail.size(), tail.size(), tail) == 0;
}

// `key` with its problem part (after the last '#', if a device is given) in the family of --pass: problem
// keys of the forward have no prefix, those of the backward start "bwd " (and, when deterministic, end
// " det"), those of the KV-cache forward "kvc " (ProblemClass::key). A key that already names its family
// is kept as it is, so a key copied
// from `list` finds its tuning whatever --pass says.
std::string qualified_key(const std::string& key, const PassFlags& pass) {
  const Family family = family_of(pass);
  const std::size_t hash = key.rfind('#');
  const std::string device = hash == std::string::npos ? "" : key.substr(0, hash + 1);
  std::string problem = hash == std::string::npos ? key : key.substr(hash + 1);
  const std::string prefix = std::string(family_name(family)) + " ";
  const bool names_a_family = problem.compare(0, 4, "bwd ") == 0 || problem.compare(0, 4, "kvc ") == 0;
  if (family != Family::fwd && !names_a_family) problem = prefix + problem;
  if (pass.deterministic && !ends_with(problem, " det")) problem += " det";
  return device + problem;
}

// The tuning key of `key`: itself when a tuning has it, else the one tuning whose problem key (the part
// after '#') it is. Empty when none; throws when several devices tuned that problem.
std::string resolve_key(const Cache& cache, const std::string& key) {
  if (cache.find_tuning(key)) return key;
  std::vector<std::string> matches;
  for (const TuningRecord& t : cache.list_tunings())
    if (t.problem_key == key) matches.push_back(t.tuning_key);
  if (matches.size() > 1) {
    std::string list;
    for (const std::string& match : matches) list += (list.empty() ? "" : "; ") + match;
    throw Error(Stage::Argument, "",
                fmt::format("'{}' was tuned on {} devices; give the full tuning key: {}", key, matches.size(), list));
  }
  return matches.empty() ? std::string() : matches.front();
}

// Ok first, fastest first; the rejected after them, grouped by status.
void sort_measurements(std::vector<Measurement>& measurements) {
  std::stable_sort(measurements.begin(), measurements.end(), [](const Measurement& a, const Measurement& b) {
    const bool a_ok = a.status == MeasurementStatus::ok, b_ok = b.status == MeasurementStatus::ok;
    if (a_ok != b_ok) return a_ok;
    if (a_ok) return a.time_ms < b.time_ms;
    return static_cast<int>(a.status) < static_cast<int>(b.status);
  });
}

std::string registers_and_spills(const ResourceUsage& r) {
  if (r.registers < 0) return "-";
  return fmt::format("{}/{}", r.registers, r.spill_store_bytes + r.spill_load_bytes);
}

// How a backward kernel adds dQ: what --deterministic chooses, and what the tuner sweeps both ways.
const char* dq_reduction(const TileConfig& config) { return config.deterministic ? "ordered" : "atomics"; }

void print_text(const TuningRecord& t) {
  const bool backward = t.winner.family == Family::bwd;
  fmt::print("tuning   {}\n", t.tuning_key);
  fmt::print("pass     {}{}\n", family_name(t.winner.family),
             backward ? fmt::format(" (winner's dQ reduction: {})",
                                    t.winner.deterministic ? "ordered, reproducible" : "atomics")
                      : "");
  fmt::print("winner   {}  {:.3f} ms  {:.1f} TFLOP/s\n", t.winner.name(), t.time_ms, t.tflops);
  fmt::print("tuned    {} in {:.1f} s\n\n", t.created_at, t.tune_seconds);
  // A backward sweep holds both dQ reductions (unless the class asks for determinism): a column tells
  // them apart at a glance, where the forward would only repeat one value.
  std::vector<std::string> header{"config", "status", ">ms", ">spread ms", ">TFLOP/s", ">rel err", ">regs/spills",
                                  "reason"};
  if (backward) header.insert(header.begin() + 1, "dQ");
  Table table(header);
  for (const Measurement& m : t.measurements) {
    const bool ok = m.status == MeasurementStatus::ok;
    std::vector<std::string> row{m.config.name(), measurement_status_name(m.status), ok ? fixed(m.time_ms, 3) : "-",
                                 ok ? fmt::format("{:.3f}", m.spread_ms) : "-", ok ? fixed(m.tflops, 1) : "-",
                                 m.o_rel_error > 0 ? fmt::format("{:.1e}", m.o_rel_error) : "-",
                                 registers_and_spills(m.resources), m.reason};
    if (backward) row.insert(row.begin() + 1, dq_reduction(m.config));
    table.add(std::move(row));
  }
  table.print();
}

void print_json(const TuningRecord& t) {
  std::vector<std::string> measurements;
  for (const Measurement& m : t.measurements)
    measurements.push_back(JsonObject()
                               .add("config", m.config.name())
                               .add("family", family_name(m.config.family))
                               .add("deterministic", m.config.deterministic)
                               .add("splits", m.config.splits)
                               .add("cubin_key", m.cubin_key)
                               .add("status", measurement_status_name(m.status))
                               .add("time_ms", m.time_ms)
                               .add("spread_ms", m.spread_ms)
                               .add("tflops", m.tflops)
                               .add("o_rel_error", m.o_rel_error)
                               .add("registers", m.resources.registers)
                               .add("spill_store_bytes", m.resources.spill_store_bytes)
                               .add("spill_load_bytes", m.resources.spill_load_bytes)
                               .add("reason", m.reason)
                               .str());
  JsonObject object = tuning_json(t);
  object.add_raw("measurements", json_array(measurements));
  fmt::print("{}\n", object.str());
}

}  // namespace

Command setup_show(CLI::App& app, const GlobalOptions& global) {
  auto options = std::make_shared<ShowOptions>();
  CLI::App* sub = app.add_subcommand("show", "Show one tuning with every candidate it measured");
  sub->add_option("key", options->key,
                  "Tuning key (device#problem), or a problem key (as `list` prints it) tuned on one device only")
      ->required();
  add_pass_flags(sub, options->pass);
  // Here the flags name a tuning rather than pick a kernel to build.
  sub->get_option("--pass")->description("Family of a key that does not name its own: fwd, bwd or kvc (adds the "
                                         "\"bwd \" or \"kvc \" prefix)");
  sub->get_option("--deterministic")->description("With --pass bwd: the class asking for reproducible gradients "
                                                  "(adds the \" det\" suffix)");
  sub->add_flag("--json", options->json, "Print the tuning and its measurements as JSON");
  return {sub, [options, &global] { return run_show(*options, global); }};
}

int run_show(const ShowOptions& options, const GlobalOptions& global) {
  const std::string wanted = qualified_key(options.key, options.pass);
  const std::optional<Cache> cache = open_existing_cache(global);
  const std::string key = cache ? resolve_key(*cache, wanted) : std::string();
  std::optional<TuningRecord> record;
  if (!key.empty()) record = cache->find_tuning(key, /*with_measurements=*/true);
  if (!record) {
    fmt::print(stderr, "fa2-tune: tuning '{}' not found in {} (see `fa2-tune list`)\n", wanted, cache_path(global));
    return kNotFound;
  }
  sort_measurements(record->measurements);
  if (options.json)
    print_json(*record);
  else
    print_text(*record);
  return kOk;
}

}  // namespace fa2::cli
