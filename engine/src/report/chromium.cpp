// Headless Chromium for PDF and PNG output (report/chromium.h).
#include "lutdose/report/chromium.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "io/output_fs.h"
#include "lutdose/error.h"

namespace lutdose::report {

namespace fs = std::filesystem;

namespace {

constexpr int kTimeoutS = 120;  // a report prints in 1-3 s; 120 s means Chromium hangs

bool executable(const std::string& p) { return !p.empty() && ::access(p.c_str(), X_OK) == 0 && fs::is_regular_file(p); }

// A fresh private directory (mkdtemp) removed when the object goes.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string t = (fs::temp_directory_path() / "lutdose-chromium-XXXXXX").string();
    if (!::mkdtemp(t.data())) throw std::runtime_error("cannot create a temporary directory in " + fs::temp_directory_path().string());
    path = t;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

// The page Chromium prints, written whole or an error (a full temporary disk must not print a
// truncated page without a word).
void write_page(const fs::path& page, const std::string& html) {
  output_fs::Fd fd(::open(page.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) output_fs::fail("cannot write " + page.string(), errno);
  output_fs::write_all(fd.get(), html, page.string());
  if (const int err = fd.close_checked()) output_fs::fail("cannot write " + page.string(), err);
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs argv with stdout and stderr into `log`; kills it after kTimeoutS. Returns the exit status.
int run(const std::vector<std::string>& args, const fs::path& log) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("cannot start " + args[0]);
  if (pid == 0) {
    if (!std::freopen(log.c_str(), "w", stdout) || !std::freopen(log.c_str(), "a", stderr)) ::_exit(127);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kTimeoutS);
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      throw std::runtime_error(args[0] + " did not finish within " + std::to_string(kTimeoutS) + " s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string render(const std::string& html, const std::string& option, const std::string& out_name,
                   const std::vector<std::string>& extra) {
  const std::string chromium = find_chromium();
  if (chromium.empty()) throw InputError(chromium_missing_message());
  TempDir dir;
  const fs::path page = dir.path / "page.html", out = dir.path / out_name, log = dir.path / "chromium.log";
  write_page(page, html);
  std::vector<std::string> args{chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                                "--disable-sync", "--hide-scrollbars", "--user-data-dir=" + (dir.path / "profile").string(),
                                option + out.string()};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back("file://" + page.string());
  const int status = run(args, log);
  std::error_code ec;
  if (status != 0 || !fs::is_regular_file(out, ec) || fs::file_size(out, ec) == 0) {
    std::string text = read_all(log);
    if (text.size() > 600) text = "..." + text.substr(text.size() - 600);
    throw std::runtime_error(chromium + " failed (exit status " + std::to_string(status) + "): " + text);
  }
  return read_all(out);
}

// CRC-32 of PNG chunks (ISO 3309, polynomial 0xEDB88320, reflected), bit by bit: a few bytes only.
std::uint32_t crc32(const std::string& bytes) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (const char ch : bytes) {
    c ^= static_cast<unsigned char>(ch);
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xFFFFFFFFu;
}

std::string big_endian(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

}  // namespace

std::string png_with_text(const std::string& png, const std::string& keyword, const std::string& text) {
  static const std::string signature = "\x89PNG\r\n\x1a\n";
  constexpr std::size_t kIhdrEnd = 8 + 4 + 4 + 13 + 4;  // signature, length, type, 13 data bytes, CRC
  if (png.size() < kIhdrEnd || png.compare(0, 8, signature) != 0 || png.compare(12, 4, "IHDR") != 0)
    throw std::invalid_argument("not a PNG with an IHDR chunk");
  const std::string chunk = "tEXt" + keyword + std::string(1, '\0') + text;
  return png.substr(0, kIhdrEnd) + big_endian(static_cast<std::uint32_t>(chunk.size() - 4)) + chunk +
         big_endian(crc32(chunk)) + png.substr(kIhdrEnd);
}

std::string find_chromium() {
  if (const char* env = std::getenv("LUTDOSE_CHROMIUM")) return executable(env) ? std::string(env) : std::string();
  if (executable("/usr/bin/chromium")) return "/usr/bin/chromium";
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  std::string d;
  std::vector<std::string> found;
  while (std::getline(dirs, d, ':'))
    for (const char* name : {"chromium", "chromium-browser", "google-chrome"})
      if (!d.empty() && executable(d + "/" + name)) return d + "/" + name;
  return "";
}

std::string chromium_missing_message() {
  return "PDF and PNG output need headless Chromium, which was not found (/usr/bin/chromium, chromium, "
         "chromium-browser or google-chrome on PATH, or $LUTDOSE_CHROMIUM); install it with "
         "`sudo bash scripts/install-deps.sh --browser` (Debian package chromium), or write HTML/SVG instead";
}

std::string html_to_pdf(const std::string& html) {
  return render(html, "--print-to-pdf=", "out.pdf", {"--no-pdf-header-footer"});
}

std::string html_to_png(const std::string& html, int width, int height) {
  return render(html, "--screenshot=", "out.png",
                {"--window-size=" + std::to_string(width) + "," + std::to_string(height)});
}

}  // namespace lutdose::report
