// Behaviour without a GPU driver, and forward()'s argument checks (which run before any GPU call).
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "fa2jit/fa2jit.hpp"
#include "runtime/driver.hpp"
#include "common/error.hpp"
#include "runtime/args_check.hpp"

namespace {

void* fake_pointer(std::uintptr_t address) { return reinterpret_cast<void*>(address); }

// Valid arguments: fake 16-byte aligned pointers, contiguous BSHD, d128 bf16, 2 x 1024 x 16 heads.
fa2::FwdArgs valid_args() {
  fa2::FwdArgs args;
  args.q = fake_pointer(0x10000);
  args.k = fake_pointer(0x20000);
  args.v = fake_pointer(0x30000);
  args.o = fake_pointer(0x40000);
  args.dtype = fa2::DType::bf16;
  args.batch = 2;
  args.heads_q = 16;
  args.heads_kv = 16;
  args.seqlen_q = 1024;
  args.seqlen_k = 1024;
  args.head_dim = 128;
  args.q_strides = args.o_strides = fa2::bshd_strides(args.seqlen_q, args.heads_q, args.head_dim);
  args.k_strides = args.v_strides = fa2::bshd_strides(args.seqlen_k, args.heads_kv, args.head_dim);
  return args;
}

// check_forward_args' message for `args`; fails the test when they are (wrongly) accepted.
std::string rejection(const fa2::FwdArgs& args) {
  try {
    fa2::check_forward_args(args);
  } catch (const fa2::Error& error) {
    CHECK(error.stage() == fa2::Stage::Argument);
    MESSAGE("rejected: ", std::string(error.what()));
    return error.what();
  }
  FAIL("check_forward_args accepted invalid arguments");
  return {};
}

std::string rejection(const std::function<void(fa2::FwdArgs&)>& change) {
  fa2::FwdArgs args = valid_args();
  change(args);
  return rejection(args);
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_SUITE("no_gpu") {

TEST_CASE("driver::available reports why there is no GPU") {
  std::string why;
  const bool available = fa2::driver::available(&why);
  if (available) {
    MESSAGE("a CUDA driver and device are available here; the no-driver checks are skipped");
    return;
  }
  CHECK(!why.empty());
  MESSAGE("driver unavailable: ", why);
  CHECK_THROWS_AS((void)fa2::driver::api(), fa2::Error);
}

TEST_CASE("forward() with valid args throws a Driver error naming libcuda.so.1") {
  if (fa2::driver::available()) {
    MESSAGE("a CUDA driver is available here: skipped (this checks the no-driver path)");
    return;
  }
  const fa2::FwdArgs args = valid_args();
  REQUIRE_NOTHROW(fa2::check_forward_args(args));  // so the failure below can only be the driver's
  bool threw = false;
  try {
    fa2::forward(args);
  } catch (const fa2::Error& error) {
    threw = true;
    CHECK(error.stage() == fa2::Stage::Driver);
    CHECK_MESSAGE(contains(error.what(), "libcuda.so.1"), std::string(error.what()));
  }
  CHECK_MESSAGE(threw, "forward() did not throw without a driver");
  // A second call fails the same way (the load error is remembered, not retried into a crash).
  try {
    fa2::forward(args);
    FAIL("second forward() did not throw");
  } catch (const fa2::Error& error) {
    CHECK(error.stage() == fa2::Stage::Driver);
  }
  // forward_config needs the device too.
  CHECK_THROWS_AS((void)fa2::forward_config(args), fa2::Error);
}

TEST_CASE("check_forward_args rejects each bad value, naming it") {
  SUBCASE("null q") {
    const std::string m = rejection([](fa2::FwdArgs& a) { a.q = nullptr; });
    CHECK_MESSAGE(contains(m, "q is a null pointer"), m);
  }
  SUBCASE("null o") {
    const std::string m = rejection([](fa2::FwdArgs& a) { a.o = nullptr; });
    CHECK_MESSAGE(contains(m, "o is a null pointer"), m);
  }
  SUBCASE("misaligned q") {
    const std::string m = rejection([](fa2::FwdArgs& a) { a.q = fake_pointer(0x10008); });
    CHECK_MESSAGE(contains(m, "0x10008"), m);
    CHECK_MESSAGE(contains(m, "16-byte"), m);
  }
  SUBCASE("misaligned lse") {
    // The LSE is written one float at a time: 4-byte alignment is what it needs.
    const std::string m = rejection([](fa2::FwdArgs& a) { a.lse = static_cast<float*>(fake_pointer(0x50002)); });
    CHECK_MESSAGE(contains(m, "lse"), m);
    CHECK_MESSAGE(contains(m, "0x50002"), m);
  }
  SUBCASE("head_dim 80") {
    const std::string m = rejection([](fa2::FwdArgs& a) {
      a.head_dim = 80;
      a.q_strides = a.o_strides = fa2::bshd_strides(a.seqlen_q, a.heads_q, 80);
      a.k_strides = a.v_strides = fa2::bshd_strides(a.seqlen_k, a.heads_kv, 80);
    });
    CHECK_MESSAGE(contains(m, "head_dim 80"), m);
  }
  SUBCASE("heads_q 6, heads_kv 4") {
    const std::string m = rejection([](fa2::FwdArgs& a) {
      a.heads_q = 6;
      a.heads_kv = 4;
      a.q_strides = a.o_strides = fa2::bshd_strides(a.seqlen_q, 6, a.head_dim);
      a.k_strides = a.v_strides = fa2::bshd_strides(a.seqlen_k, 4, a.head_dim);
    });
    CHECK_MESSAGE(contains(m, "heads_q 6"), m);
    CHECK_MESSAGE(contains(m, "heads_kv 4"), m);
  }
  SUBCASE("seqlen_q 0") {
    const std::string m = rejection([](fa2::FwdArgs& a) { a.seqlen_q = 0; });
    CHECK_MESSAGE(contains(m, "seqlen_q 0"), m);
  }
  SUBCASE("seqlen_k -1") {
    const std::string m = rejection([](fa2::FwdArgs& a) { a.seqlen_k = -1; });
    CHECK_MESSAGE(contains(m, "seqlen_k -1"), m);
  }
  SUBCASE("batch 0") {
    const std::string m = rejection([](fa2::FwdArgs& a) { a.batch = 0; });
    CHECK_MESSAGE(contains(m, "batch 0"), m);
  }
  SUBCASE("row stride not a multiple of 8") {
    const std::string m = rejection([](fa2::FwdArgs& a) { a.k_strides.row = 16 * 128 + 4; });
    CHECK_MESSAGE(contains(m, std::to_string(16 * 128 + 4)), m);
    CHECK_MESSAGE(contains(m, "multiple of 8"), m);
  }
  SUBCASE("row stride smaller than head_dim") {
    const std::string m = rejection([](fa2::FwdArgs& a) { a.q_strides.row = 64; });
    CHECK_MESSAGE(contains(m, "row stride 64"), m);
    CHECK_MESSAGE(contains(m, "head_dim 128"), m);
  }
  SUBCASE("softmax_scale NaN") {
    const std::string m = rejection([](fa2::FwdArgs& a) { a.softmax_scale = std::numeric_limits<float>::quiet_NaN(); });
    CHECK_MESSAGE(contains(m, "softmax_scale nan"), m);
  }
  SUBCASE("softmax_scale -1") {
    const std::string m = rejection([](fa2::FwdArgs& a) { a.softmax_scale = -1.0f; });
    CHECK_MESSAGE(contains(m, "softmax_scale -1"), m);
  }
  SUBCASE("softmax_scale +inf and 0") {
    const std::string inf = rejection([](fa2::FwdArgs& a) { a.softmax_scale = std::numeric_limits<float>::infinity(); });
    CHECK_MESSAGE(contains(inf, "softmax_scale inf"), inf);
    const std::string zero = rejection([](fa2::FwdArgs& a) { a.softmax_scale = 0.0f; });
    CHECK_MESSAGE(contains(zero, "softmax_scale 0"), zero);
  }
}

TEST_CASE("check_forward_args accepts GQA, MQA and BHSD strides") {
  {
    fa2::FwdArgs a = valid_args();
    CHECK_NOTHROW(fa2::check_forward_args(a));
    a.softmax_scale = 0.125f;
    a.lse = static_cast<float*>(fake_pointer(0x50000));
    a.causal = true;
    CHECK_NOTHROW(fa2::check_forward_args(a));
  }
  {
    fa2::FwdArgs a = valid_args();  // GQA 32/8
    a.heads_q = 32;
    a.heads_kv = 8;
    a.q_strides = a.o_strides = fa2::bshd_strides(a.seqlen_q, 32, a.head_dim);
    a.k_strides = a.v_strides = fa2::bshd_strides(a.seqlen_k, 8, a.head_dim);
    CHECK_NOTHROW(fa2::check_forward_args(a));
  }
  {
    fa2::FwdArgs a = valid_args();  // MQA 8/1
    a.heads_q = 8;
    a.heads_kv = 1;
    a.q_strides = a.o_strides = fa2::bshd_strides(a.seqlen_q, 8, a.head_dim);
    a.k_strides = a.v_strides = fa2::bshd_strides(a.seqlen_k, 1, a.head_dim);
    CHECK_NOTHROW(fa2::check_forward_args(a));
  }
  {
    fa2::FwdArgs a = valid_args();  // BHSD, different seqlens, d64
    a.head_dim = 64;
    a.seqlen_q = 100;
    a.seqlen_k = 300;
    a.q_strides = a.o_strides = fa2::bhsd_strides(a.seqlen_q, a.heads_q, 64);
    a.k_strides = a.v_strides = fa2::bhsd_strides(a.seqlen_k, a.heads_kv, 64);
    CHECK_NOTHROW(fa2::check_forward_args(a));
  }
}

TEST_CASE("bshd/bhsd strides") {
  const fa2::Strides bshd = fa2::bshd_strides(1024, 16, 128);
  CHECK(bshd.batch == 1024LL * 16 * 128);
  CHECK(bshd.head == 128);
  CHECK(bshd.row == 16 * 128);
  const fa2::Strides bhsd = fa2::bhsd_strides(1024, 16, 128);
  CHECK(bhsd.batch == 16LL * 1024 * 128);
  CHECK(bhsd.head == 1024 * 128);
  CHECK(bhsd.row == 128);
}

}  // TEST_SUITE
