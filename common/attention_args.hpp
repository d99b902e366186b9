// The argument structs are part of the public API (fa2jit/attention_args.hpp); internal code includes
// them through here, at the bottom of the internal layers, together with the arch facts that go with
// them (common/types.hpp: which head dims are supported, what each arch can hold).
#pragma once

#include "common/types.hpp"
#include "fa2jit/attention_args.hpp"
