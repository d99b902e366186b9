// Progress of long commands (tune, build) on stderr. On a terminal: one line, redrawn in place, with
// the phase, done/total, percent and an ETA. Elsewhere (logs, pipes, CI): no redraws, which would
// only fill the log with carriage returns; per-item lines only with --verbose.
#pragma once

#include <chrono>
#include <string>

namespace fa2::cli {

class ProgressDisplay {
 public:
  explicit ProgressDisplay(bool verbose);
  ~ProgressDisplay();
  ProgressDisplay(const ProgressDisplay&) = delete;
  ProgressDisplay& operator=(const ProgressDisplay&) = delete;

  // Starts a new task (e.g. one problem): its label leads the bar.
  void start(std::string label);
  // One more item of `phase` finished; `detail` says which and how it went.
  void update(const std::string& phase, int done, int total, const std::string& detail);
  // A line to keep (a problem's result): printed on its own line, the bar redrawn below it later.
  void line(const std::string& text);
  // Removes the bar, so that what follows starts on a clean line.
  void clear();

 private:
  void draw(int done, int total);

  bool terminal_;
  bool verbose_;
  bool drawn_ = false;
  std::string label_;
  std::string phase_;
  std::chrono::steady_clock::time_point phase_started_;
};

}  // namespace fa2::cli
