// Helpers shared by the unit tests.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>

#include <cstdio>
#include <string>

namespace lutdose::test {

//! Writes `content` to a new temporary file and returns its path (the caller removes it).
inline std::string write_temp(const std::string& content) {
  char name[] = "/tmp/lutdose_test_XXXXXX";
  const int fd = mkstemp(name);
  REQUIRE(fd >= 0);
  std::FILE* f = fdopen(fd, "w");
  std::fputs(content.c_str(), f);
  std::fclose(f);
  return name;
}

}  // namespace lutdose::test
