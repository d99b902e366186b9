// Plain-text tables for the CLI's reports: columns padded to their widest cell.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace fa2::cli {

class Table {
 public:
  // A header starting with '>' names a right-aligned (numeric) column; the '>' is not printed.
  explicit Table(std::vector<std::string> header);
  void add(std::vector<std::string> row);  // shorter rows are padded with empty cells
  bool empty() const { return rows_.empty(); }
  void print(std::FILE* out = stdout) const;

 private:
  std::vector<std::string> header_;
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace fa2::cli
