// The generated source of the user modifications (fa2jit/user_mods.hpp): a struct holding the snippets as
// member functions and the extra arrays as named members (templates/fa2/variant/user_mods.cuh says what the
// kernels call), and the entry point of the mask_mod tile-list kernel (templates/fa2/variant/block_mask.cuh).
// The snippets are placed under `#line 1 "score_mod"` (and "score_mod_grad", "mask_mod"), so NVRTC reports an
// error in a snippet at the snippet's own line.
#pragma once

#include <string>

#include "fa2jit/tile_config.hpp"

namespace fa2 {

// The generated struct's name, the last template argument of ScoreVariant in configs with snippets.
constexpr const char* kUserModsType = "FA2UserMods";

// The struct, for a source whose next line is `first_line` (1-based) of the program `config.name() + ".cu"`
// (the line numbering after the snippets is restored to it); "" without user modifications.
std::string user_mods_struct(const TileConfig& config, int first_line);
// The same for the program `program` (the reference kernels' module).
std::string user_mods_struct(const UserMods& mods, const std::string& program, int first_line);

// Whether the config's module has the "_bmask" tile-list kernel: with mask_mod, except the deterministic
// backward, whose dQ order needs every key block to visit every query block of its range.
bool uses_tile_lists(const TileConfig& config);

// The "_bmask" entry point (same parameters as the main kernel: `params_type` and the variant values), calling
// fa2::`function`<Config>; "" when the config has none.
std::string tile_lists_entry(const TileConfig& config, const char* params_type, const char* function);

// Lines in `text` (the number of '\n').
int line_count(const std::string& text);

}  // namespace fa2
