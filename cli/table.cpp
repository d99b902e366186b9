#include "cli/table.hpp"

#include <fmt/core.h>

#include <algorithm>

namespace fa2::cli {

Table::Table(std::vector<std::string> header) {
  for (std::string& name : header) {
    const bool right = !name.empty() && name.front() == '>';
    right_.push_back(right);
    header_.push_back(right ? name.substr(1) : std::move(name));
  }
}

void Table::add(std::vector<std::string> row) {
  row.resize(header_.size());
  rows_.push_back(std::move(row));
}

void Table::print(std::FILE* out) const {
  std::vector<std::size_t> widths;
  for (const std::string& name : header_) widths.push_back(name.size());
  for (const auto& row : rows_)
    for (std::size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());

  auto print_row = [&](const std::vector<std::string>& row) {
    std::string text;
    for (std::size_t c = 0; c < row.size(); ++c) {
      const std::string pad(widths[c] - row[c].size(), ' ');
      text += c == 0 ? "" : "  ";
      // The last column is not padded on the right: no trailing blanks.
      text += right_[c] ? pad + row[c] : (c + 1 == row.size() ? row[c] : row[c] + pad);
    }
    fmt::print(out, "{}\n", text);
  };
  print_row(header_);
  for (const auto& row : rows_) print_row(row);
}

}  // namespace fa2::cli
