#include "runtime/user_mods_launch.hpp"

#include <fmt/format.h>

#include "codegen/snippet_source.hpp"
#include "common/error.hpp"

namespace fa2 {

UserModParams make_user_mod_params(const VariantArgs& variant, float kernel_softmax_scale) {
  UserModParams params{};
  for (std::size_t i = 0; i < variant.extra.size() && i < static_cast<std::size_t>(kUserModMaxExtras); ++i)
    params.extra[i] = variant.extra[i].data;
  params.score_scale = kernel_softmax_scale;
  params.inv_score_scale = 1.f / kernel_softmax_scale;
  return params;
}

namespace {
long long blocks_of(long long count, int per_block) { return (count + per_block - 1) / per_block; }
}  // namespace

TileListShape fwd_tile_list_shape(const TileConfig& config, const FwdArgs& args) {
  TileListShape shape;
  shape.lists = blocks_of(args.seqlen_q, config.block_m) * args.heads_q * args.batch;
  shape.stride = 1 + blocks_of(args.seqlen_k, config.block_n);
  return shape;
}

TileListShape bwd_tile_list_shape(const TileConfig& config, const BwdArgs& args, long long key_blocks) {
  TileListShape shape;
  shape.lists = key_blocks;
  shape.stride = 1 + static_cast<long long>(args.heads_q / args.heads_kv) * blocks_of(args.seqlen_q, config.block_m);
  return shape;
}

StreamScratch::~StreamScratch() {
  // Queued after every launch that reads it; an error here has no one left to report to.
  if (address_ != 0) driver::api().MemFreeAsync(address_, stream_);
}

void StreamScratch::allocate(std::size_t bytes, CUstream stream, const char* what) {
  stream_ = stream;
  driver::check(driver::api().MemAllocAsync(&address_, bytes > 0 ? bytes : 4, stream),
                fmt::format("cuMemAllocAsync({})", what).c_str());
}

}  // namespace fa2
