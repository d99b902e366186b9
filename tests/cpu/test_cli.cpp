// fa2-tune, run as a process: exit codes and one-line messages of `emit` and `check`.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>

#include "codegen/tile_config.hpp"
#include "runtime/driver.hpp"
#include "tests/support/fa2_tune_process.hpp"

namespace {

using fa2::test::contains;
using fa2::test::one_line;
using fa2::test::run;
using fa2::test::Run;

}  // namespace

TEST_SUITE("cli") {

TEST_CASE("emit prints the generated source") {
  const Run r = run("emit --head-dim 128 --dtype bf16 --causal");
  CHECK(r.status == 0);
  const std::string name = fa2::default_config(128, fa2::DType::bf16, true, fa2::Arch::sm_90a).name();
  CHECK_MESSAGE(contains(r.output, name), r.output);
  CHECK(contains(r.output, "#include \"fa2/fwd/fwd_kernel_wgmma.cuh\""));  // the sm_90a default
  const Run sm80 = run("emit --head-dim 128 --arch sm_80");
  CHECK_MESSAGE(contains(sm80.output, "#include \"fa2/fwd/fwd_kernel.cuh\""), sm80.output);
  const Run overlap = run("emit --head-dim 128 --scheme wgmma_overlap");
  CHECK_MESSAGE(contains(overlap.output, "/*overlap*/ true"), overlap.output);
}

TEST_CASE("emit rejects an unknown scheme and a wgmma config off sm_90a, naming what is allowed") {
  const Run unknown = run("emit --scheme wmma");
  CHECK(unknown.status != 0);
  CHECK_MESSAGE(contains(unknown.output, "mma_sync|wgmma|wgmma_overlap|wgmma_ss"), unknown.output);
  const Run sm80 = run("emit --head-dim 128 --arch sm_80 --scheme wgmma");
  CHECK(sm80.status == 2);
  CHECK_MESSAGE(contains(sm80.output, "needs arch sm_90a"), sm80.output);
}

TEST_CASE("emit --blocks-per-sm 2: launch bounds for two blocks, registers capped at 128, or why not") {
  const Run source = run("emit --head-dim 128 --scheme wgmma --block-n 64 --blocks-per-sm 2");
  CHECK(source.status == 0);
  CHECK_MESSAGE(contains(source.output, "__launch_bounds__(Config::kThreads, 2)"), source.output);
  CHECK_MESSAGE(contains(source.output, "fa2_fwd_wgmma_d128_bf16_full_m128n64w8s2b2_sm90a"), source.output);

  const Run report = run("emit --head-dim 128 --scheme wgmma --block-n 32 --stages 1 --blocks-per-sm 2 --compile");
  CHECK(report.status == 0);
  CHECK_MESSAGE(contains(report.output, "blocks/SM     2"), report.output);
  const std::size_t at = report.output.find("registers");
  REQUIRE(at != std::string::npos);
  const int registers = std::atoi(report.output.c_str() + report.output.find_first_of("0123456789", at));
  CHECK(registers > 0);
  CHECK(registers <= 128);

  const Run too_big = run("emit --head-dim 256 --blocks-per-sm 2");
  CHECK(too_big.status == 2);
  CHECK_MESSAGE(contains(too_big.output, "leave 128 registers per thread"), too_big.output);
  const Run zero = run("emit --blocks-per-sm 0");
  CHECK(zero.status != 0);
  CHECK_MESSAGE(contains(zero.output, "--blocks-per-sm"), zero.output);
}

TEST_CASE("emit --compile prints a resource report") {
  const Run r = run("emit --head-dim 128 --causal --arch sm_80 --compile");
  CHECK(r.status == 0);
  CHECK_MESSAGE(contains(r.output, "registers"), r.output);
  CHECK_MESSAGE(contains(r.output, "spill"), r.output);
  CHECK(contains(r.output, fa2::default_config(128, fa2::DType::bf16, true, fa2::Arch::sm_80).name()));
  CHECK(!contains(r.output, "#include"));  // the report, not the source
}

TEST_CASE("emit rejects an unsupported head dim in one line") {
  const Run r = run("emit --head-dim 100");
  CHECK(r.status != 0);
  CHECK_MESSAGE(contains(r.output, "100"), r.output);
  CHECK_MESSAGE(one_line(r.output), r.output);
}

TEST_CASE("emit rejects an unknown dtype") {
  const Run r = run("emit --dtype fp32");
  CHECK(r.status != 0);
  CHECK_MESSAGE(contains(r.output, "fp32"), r.output);
  CHECK_MESSAGE(one_line(r.output), r.output);
}

TEST_CASE("emit rejects an unsupported arch") {
  const Run r = run("emit --arch sm_70");
  CHECK(r.status != 0);
  CHECK_MESSAGE(contains(r.output, "sm_70"), r.output);
}

TEST_CASE("emit of an invalid config exits 2 naming the reason") {
  const Run r = run("emit --head-dim 256 --block-m 128 --warps 4 --scheme mma_sync");
  CHECK(r.status == 2);
  fa2::TileConfig config = fa2::default_config(256, fa2::DType::bf16, false, fa2::Arch::sm_90a);
  config.scheme = fa2::Scheme::mma_sync;
  config.block_m = 128;
  config.warps = 4;
  REQUIRE(config.validate().has_value());
  CHECK_MESSAGE(contains(r.output, *config.validate()), r.output);
  CHECK_MESSAGE(contains(r.output, std::to_string(config.accumulator_registers())), r.output);
  CHECK_MESSAGE(one_line(r.output), r.output);
}

TEST_CASE("no subcommand is an error") {
  const Run r = run("");
  CHECK(r.status != 0);
  CHECK(!r.output.empty());
}

TEST_CASE("check without a GPU fails with a one-line driver message") {
  if (fa2::driver::available()) {
    MESSAGE("a CUDA driver is available here: skipped (this checks the no-driver path)");
    return;
  }
  const Run r = run("check");
  CHECK(r.status != 0);
  CHECK_MESSAGE(contains(r.output, "libcuda.so.1"), r.output);
  CHECK_MESSAGE(one_line(r.output), r.output);
}

}  // TEST_SUITE
