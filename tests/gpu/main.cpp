// GPU suite entry point: runs the doctest suites when a driver and a GPU are present, otherwise says
// why not and exits 77, which ctest reports as skipped (SKIP_RETURN_CODE).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <string>

#include "runtime/driver.hpp"

int main(int argc, char** argv) {
  std::string why;
  if (!fa2::driver::available(&why)) {
    std::printf("GPU suite skipped: %s\n", why.c_str());
    return 77;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
