// Bad input through the C ABI and fa2-tune's flags: each is refused with a status or exit code and a
// message naming the value, before any GPU work, and nothing crashes. (test_no_gpu.cpp covers
// check_forward_args value by value; python/tests the ctypes binding.)
#include <doctest/doctest.h>

#include <climits>
#include <cstring>
#include <functional>
#include <string>

#include "fa2jit/fa2jit.h"
#include "tests/support/fa2_tune_process.hpp"

namespace {

using fa2::test::contains;
using fa2::test::one_line;
using fa2::test::run;
using fa2::test::Run;
using fa2::test::TempDir;

// Valid arguments but for fake (aligned) pointers: d64 bf16, 1 x 128 x 8 heads, BSHD.
fa2_forward_args valid_args() {
  fa2_forward_args a;
  fa2_forward_args_init(&a);
  a.dtype = FA2_DTYPE_BF16;
  a.q = reinterpret_cast<const void*>(0x10000);
  a.k = reinterpret_cast<const void*>(0x20000);
  a.v = reinterpret_cast<const void*>(0x30000);
  a.o = reinterpret_cast<void*>(0x40000);
  a.batch = 1;
  a.heads_q = a.heads_kv = 8;
  a.seqlen_q = a.seqlen_k = 128;
  a.head_dim = 64;
  a.q_row_stride = a.k_row_stride = a.v_row_stride = a.o_row_stride = 8 * 64;
  a.q_head_stride = a.k_head_stride = a.v_head_stride = a.o_head_stride = 64;
  a.q_batch_stride = a.k_batch_stride = a.v_batch_stride = a.o_batch_stride = 128 * 8 * 64;
  a.tune_policy = FA2_TUNE_HEURISTIC;
  return a;
}

// fa2_forward's message for `args` changed by `change`, checking it is an argument error.
std::string c_rejection(const std::function<void(fa2_forward_args&)>& change) {
  fa2_forward_args a = valid_args();
  change(a);
  const int status = fa2_forward(&a, nullptr);
  const std::string message = fa2_last_error();
  MESSAGE("status ", fa2_status_name(status), ": ", message);
  CHECK(status == FA2_ERROR_ARGUMENT);
  return message;
}

}  // namespace

TEST_SUITE("hardening_input") {

TEST_CASE("C ABI: null, wrongly sized and out-of-range arguments are argument errors naming the value") {
  CHECK(fa2_forward(nullptr, nullptr) == FA2_ERROR_ARGUMENT);
  CHECK(contains(fa2_last_error(), "args is a null pointer"));
  char name[64];
  CHECK(fa2_forward_config_name(nullptr, name, sizeof(name)) == FA2_ERROR_ARGUMENT);
  CHECK(contains(fa2_last_error(), "args is a null pointer"));
  fa2_forward_args a = valid_args();
  CHECK(fa2_forward_config_name(&a, nullptr, 64) == FA2_ERROR_ARGUMENT);
  CHECK(contains(fa2_last_error(), "buffer is a null pointer"));
  fa2_forward_args_init(nullptr);  // no crash
  CHECK(std::string(fa2_status_name(1234)) == "unknown");

  CHECK(contains(c_rejection([](fa2_forward_args& x) { x.struct_size = 8; }), "struct_size is 8"));
  CHECK(contains(c_rejection([](fa2_forward_args& x) { x.struct_size = 0; }), "struct_size is 0"));
  CHECK(contains(c_rejection([](fa2_forward_args& x) { x.dtype = 7; }), "dtype 7"));
  CHECK(contains(c_rejection([](fa2_forward_args& x) { x.dtype = -1; }), "dtype -1"));
  CHECK(contains(c_rejection([](fa2_forward_args& x) { x.tune_policy = 9; }), "tune_policy 9"));
  CHECK(contains(c_rejection([](fa2_forward_args& x) { x.softmax_scale = -2.f; }), "softmax_scale -2"));
  CHECK(contains(c_rejection([](fa2_forward_args& x) { x.q = nullptr; }), "q is a null pointer"));
  CHECK(contains(c_rejection([](fa2_forward_args& x) { x.v = reinterpret_cast<const void*>(0x30004); }), "0x30004"));
  CHECK(contains(c_rejection([](fa2_forward_args& x) { x.head_dim = 48; }), "head_dim 48"));
  CHECK(contains(c_rejection([](fa2_forward_args& x) { x.head_dim = -64; }), "head_dim -64"));
  CHECK(contains(c_rejection([](fa2_forward_args& x) { x.batch = 0; }), "batch 0"));
  CHECK(contains(c_rejection([](fa2_forward_args& x) { x.batch = 70000; }), "batch 70000"));
  CHECK(contains(c_rejection([](fa2_forward_args& x) { x.heads_kv = 0; }), "heads_kv 0"));
  CHECK(contains(c_rejection([](fa2_forward_args& x) {
          x.heads_q = 6;
          x.heads_kv = 4;
        }),
        "heads_q 6 is not a multiple of heads_kv 4"));
  CHECK(contains(c_rejection([](fa2_forward_args& x) { x.seqlen_k = -5; }), "seqlen_k -5"));
  CHECK(contains(c_rejection([](fa2_forward_args& x) { x.k_row_stride = 8 * 64 + 4; }), std::to_string(8 * 64 + 4)));
  CHECK(contains(c_rejection([](fa2_forward_args& x) { x.o_batch_stride = -8; }), "-8"));
  // Sizes whose index math would overflow: a seqlen near INT_MAX (the grid's block count is computed
  // as seqlen + block_m - 1) and a row stride beyond the kernel's 32-bit offsets within a tile.
  CHECK(contains(c_rejection([](fa2_forward_args& x) { x.seqlen_q = INT_MAX; }), std::to_string(INT_MAX)));
  CHECK(contains(c_rejection([](fa2_forward_args& x) { x.q_row_stride = 1ll << 40; }), std::to_string(1ll << 40)));
}

TEST_CASE("fa2-tune: zero, negative, mismatched and overflowing sizes fail in one line naming the value") {
  TempDir dir;
  const std::string db = " --db '" + dir.file("k.db") + "'";
  struct Case {
    std::string args;
    std::string value;
  };
  const Case cases[] = {
      {"build --arch sm_80 --batch 0", "0"},
      {"build --arch sm_80 --seqlen -5", "-5"},
      {"build --arch sm_80 --heads 6 --heads-kv 4", "--heads 6 is not a multiple of --heads-kv 4"},
      {"build --arch sm_80 --threads 0", "0"},
      {"build --arch sm_80 --seqlen 99999999999", "99999999999"},
      {"build --arch sm_75", "sm_75"},
      {"build --head-dim 64", "--arch"},
      {"tune --batch 0", "0"},
      {"tune --seqlen -5", "-5"},
      {"tune --heads 6 --heads-kv 4", "--heads 6 is not a multiple of --heads-kv 4"},
      {"tune --heads-kv 0", "0"},
      {"tune --repeats 0", "0"},
      {"bench --batch 0", "0"},
      {"bench --seqlen-q -5", "-5"},
      {"bench --heads 6 --heads-kv 4", "--heads 6 is not a multiple of --heads-kv 4"},
      {"bench --head-dim 65", "65"},
      {"check --batch 0", "0"},
      {"check --seqlen-k -5", "-5"},
      {"check --head-dim 0", "0"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.args);
    const Run r = run(c.args + db);
    CHECK(r.status != 0);
    CHECK(r.status != -1);  // exited, did not crash
    CHECK_MESSAGE(contains(r.output, c.value), r.output);
    CHECK_MESSAGE(one_line(r.output), r.output);
  }
  CHECK_FALSE(std::filesystem::exists(dir.file("k.db")));  // every one was refused before the cache opened
}

}  // TEST_SUITE
