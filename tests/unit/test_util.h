// Helpers shared by the unit tests.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
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

//! The bytes of the file at `p` ("" when it cannot be read).
inline std::string read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

//! A new temporary directory, removed with everything in it at the end of the scope.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string t = (std::filesystem::temp_directory_path() / "lutdose_unit_XXXXXX").string();
    REQUIRE(::mkdtemp(t.data()) != nullptr);
    path = t;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() { std::filesystem::remove_all(path); }
  //! The path of `name` in the directory, as text.
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

}  // namespace lutdose::test
