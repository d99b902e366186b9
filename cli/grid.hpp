// The problem grid shared by `tune` and `build`: one set of flags, and the shapes they expand to.
#pragma once

#include <CLI/CLI.hpp>

#include <vector>

#include "autotune/problem_shape.hpp"
#include "cli/commands.hpp"

namespace fa2::cli {

// Registers --pass (fwd|bwd|both), --deterministic, --model, --head-dim, --dtype, --causal, --batch, --heads,
// --heads-kv, --seqlen, --seqlen-k.
void add_grid_options(CLI::App& sub, GridOptions& grid);

// Every combination of the grid's values (bshd layout), one per problem class: shapes whose classes
// coincide (e.g. seqlens 1000 and 1024) are kept once. With --pass both each grid point gives its forward
// problem, then its backward one. Throws fa2::Error(Stage::Argument) when the heads do not divide, the
// model or pass is unknown, or --deterministic comes without a backward pass.
std::vector<ProblemShape> grid_shapes(const GridOptions& grid);

}  // namespace fa2::cli
