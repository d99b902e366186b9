// The backward main kernel's grid order, on the host (the mapping is shared with the device through
// fa2/bwd/bwd_params.h): every (key block, batch, KV head) exactly once, a pair's key blocks in rising order
// (the deterministic dQ reduction waits on lower key blocks, so they must be dispatched first), and the
// pairs of one wave group dispatched together. Plus the host's choice of the group size.
#include <doctest/doctest.h>

#include <set>
#include <tuple>
#include <vector>

#include "runtime/params_builder.hpp"

namespace {

struct GridCase {
  int batch, heads_kv, key_blocks, pairs_per_wave;
};

}  // namespace

TEST_CASE("the backward grid covers every key block once, each pair's key blocks in rising order") {
  const std::vector<GridCase> cases = {{1, 1, 1, 1},   {1, 8, 32, 4},   {16, 8, 16, 8}, {3, 5, 7, 4},
                                       {2, 3, 1, 6},   {32, 8, 8, 16},  {1, 8, 256, 1}, {4, 2, 9, 3},
                                       {5, 1, 13, 2},  {2, 2, 4, 100}};
  for (const GridCase& c : cases) {
    CAPTURE(c.batch);
    CAPTURE(c.heads_kv);
    CAPTURE(c.key_blocks);
    CAPTURE(c.pairs_per_wave);
    const int pairs = c.batch * c.heads_kv;
    const int wave = c.pairs_per_wave < pairs ? c.pairs_per_wave : pairs;
    std::set<std::tuple<int, int, int>> seen;
    std::vector<int> next_key_block(pairs, 0);
    for (int block = 0; block < pairs * c.key_blocks; ++block) {
      const fa2::KeyBlockIndex index =
          fa2::key_block_index(block, c.batch, c.heads_kv, c.key_blocks, c.pairs_per_wave);
      REQUIRE(index.n_block >= 0);
      REQUIRE(index.n_block < c.key_blocks);
      REQUIRE(index.batch >= 0);
      REQUIRE(index.batch < c.batch);
      REQUIRE(index.head_kv >= 0);
      REQUIRE(index.head_kv < c.heads_kv);
      CHECK(seen.insert({index.n_block, index.batch, index.head_kv}).second);
      const int pair = index.batch * c.heads_kv + index.head_kv;
      CHECK(index.n_block == next_key_block[pair]);  // rising, none skipped
      next_key_block[pair] = index.n_block + 1;
      CHECK(pair / wave == block / (wave * c.key_blocks));  // the pair belongs to the block's wave group
    }
    CHECK(static_cast<int>(seen.size()) == pairs * c.key_blocks);
  }
}

TEST_CASE("the backward's wave groups hold as many pairs as fill the resident blocks") {
  fa2::BwdArgs args;
  args.batch = 16;
  args.heads_q = 8;
  args.heads_kv = 8;
  args.seqlen_q = 1024;
  args.seqlen_k = 1024;
  CHECK(fa2::bwd_pairs_per_wave(args, 64, 132) == 8);   // 16 key blocks a pair: 8 pairs fill 132 SMs
  CHECK(fa2::bwd_pairs_per_wave(args, 64, 264) == 16);  // two blocks per SM
  CHECK(fa2::bwd_pairs_per_wave(args, 64, 0) == 128);   // occupancy unknown: every pair, key block slowest
  args.seqlen_k = 16384;                                // 256 key blocks: more than the SMs hold
  CHECK(fa2::bwd_pairs_per_wave(args, 64, 132) == 1);
  args.batch = 1;
  args.seqlen_k = 100;  // 2 key blocks, 8 pairs: the group is capped at the pairs there are
  CHECK(fa2::bwd_pairs_per_wave(args, 64, 132) == 8);
}
