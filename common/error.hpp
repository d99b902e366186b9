// fa2::Error is part of the public API (fa2jit/error.hpp); internal code includes it through here, at
// the bottom of the internal layers.
#pragma once

#include "fa2jit/error.hpp"
