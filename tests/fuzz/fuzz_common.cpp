#include "fuzz_common.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "lutdose/io/data_dir.h"

namespace lutdose_fuzz {

namespace {
std::string make_work_dir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/lutdose-fuzz-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    std::perror("lutdose fuzz: mkdtemp");
    std::abort();
  }
  return buf.data();
}

// Created on first use and removed at exit; held on the heap (never freed) so that it outlives the
// exit handler that removes the directory.
const std::string& work_dir() {
  static const std::string* dir = [] {
    auto* d = new std::string(make_work_dir());
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(*dir, ec);
    });
    return d;
  }();
  return *dir;
}
}  // namespace

std::string write_input(const char* name, const uint8_t* data, size_t size) {
  const std::string path = work_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) {
    std::perror(("lutdose fuzz: cannot write " + path).c_str());
    std::abort();
  }
  return path;
}

const std::string& data_dir() {
  static const std::string dir = lutdose::find_data_dir();
  return dir;
}

}  // namespace lutdose_fuzz
