#include "cli/progress.hpp"

#include <fmt/core.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>

namespace fa2::cli {

namespace {

// A bar wider than the terminal wraps, and \r then redraws only its last row: truncate to fit.
std::size_t terminal_columns() {
  winsize size{};
  if (::ioctl(fileno(stderr), TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 80;
}

std::string duration_text(double seconds) {
  const long long s = static_cast<long long>(seconds + 0.5);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
                   : fmt::format("{}:{:02}", s / 60, s % 60);
}

}  // namespace

ProgressDisplay::ProgressDisplay(bool verbose) : terminal_(::isatty(fileno(stderr)) != 0), verbose_(verbose) {}

ProgressDisplay::~ProgressDisplay() { clear(); }

void ProgressDisplay::start(std::string label) {
  label_ = std::move(label);
  phase_.clear();
}

void ProgressDisplay::update(const std::string& phase, int done, int total, const std::string& detail) {
  if (phase != phase_) {
    phase_ = phase;
    phase_started_ = std::chrono::steady_clock::now();
  }
  if (verbose_) line(fmt::format("  {} {}/{} {}", phase, done, total, detail));
  if (terminal_) draw(done, total);
}

void ProgressDisplay::line(const std::string& text) {
  clear();
  fmt::print(stderr, "{}\n", text);
}

void ProgressDisplay::clear() {
  if (!drawn_) return;
  fmt::print(stderr, "\r\x1b[K");  // carriage return, then erase to the end of the line
  std::fflush(stderr);
  drawn_ = false;
}

void ProgressDisplay::draw(int done, int total) {
  constexpr int kWidth = 20;
  const double fraction = total > 0 ? static_cast<double>(done) / total : 1.0;
  const int filled = static_cast<int>(fraction * kWidth);
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - phase_started_).count();
  // The rate of this phase so far: compiles and measurements take very different times per item.
  const std::string eta = done > 0 && done < total ? " ETA " + duration_text(elapsed / done * (total - done)) : "";
  // The label goes last: a narrow terminal then cuts the label, not the numbers.
  std::string text = fmt::format("{} [{}{}] {}/{} {:3.0f}%{}  {}", phase_, std::string(filled, '#'),
                                 std::string(kWidth - filled, '.'), done, total, fraction * 100, eta, label_);
  const std::size_t columns = terminal_columns();
  if (text.size() >= columns) text.resize(columns - 1);
  fmt::print(stderr, "\r{}\x1b[K", text);
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace fa2::cli
