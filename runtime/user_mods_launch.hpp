// The runtime side of the user modifications (fa2jit/user_mods.hpp): their kernel parameters (the extra arrays'
// addresses, the scale score_mod's logit is taken at) and mask_mod's tile lists, allocated on the stream and
// filled by the module's "_bmask" kernel just before the main kernel reads them.
#pragma once

#include <cstddef>

#include "common/attention_args.hpp"
#include "fa2/variant/user_mod_params.h"
#include "fa2jit/tile_config.hpp"
#include "runtime/driver.hpp"

namespace fa2 {

// The user modifications' values for one call: the extra arrays in the order of the call's `extra` (the order
// the kernel was compiled for), and the kernel's softmax scale after the variants' rewrite (softcap's cap).
UserModParams make_user_mod_params(const VariantArgs& variant, float kernel_softmax_scale);

// One list per block of the main kernel's grid, `stride` ints each (a count and at most stride - 1 entries).
struct TileListShape {
  long long lists = 0;
  long long stride = 0;
  std::size_t bytes() const { return static_cast<std::size_t>(lists * stride) * sizeof(int); }
};
// The forward's: a list per (query block, head, batch), an entry per key tile of the sequence at most.
TileListShape fwd_tile_list_shape(const TileConfig& config, const FwdArgs& args);
// The backward's: a list per key block, an entry per (query head of the group, query block) at most.
TileListShape bwd_tile_list_shape(const TileConfig& config, const BwdArgs& args, long long key_blocks);

// Stream-ordered device scratch, freed on the same stream when it goes out of scope (after the launches that
// were queued while it lived).
class StreamScratch {
 public:
  StreamScratch() = default;
  StreamScratch(const StreamScratch&) = delete;
  StreamScratch& operator=(const StreamScratch&) = delete;
  ~StreamScratch();
  void allocate(std::size_t bytes, CUstream stream, const char* what);
  CUdeviceptr address() const { return address_; }

 private:
  CUdeviceptr address_ = 0;
  CUstream stream_ = nullptr;
};

}  // namespace fa2
