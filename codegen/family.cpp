#include "codegen/family.hpp"

namespace fa2 {

const KernelFamily& kernel_family(Family family) {
  switch (family) {
    case Family::fwd: return forward_family();
    case Family::bwd: return backward_family();
    case Family::kvc: return kvcache_family();
  }
  return forward_family();
}

}  // namespace fa2
