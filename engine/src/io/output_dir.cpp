// Crash-safe, data-safe output: staging directory, manifest, atomic publication, cleaning of
// killed runs' leftovers. The guarantee and the mechanism: lutdose/output_dir.h, docs/results.md.
#include "lutdose/io/output_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>  // renameat2, RENAME_NOREPLACE, RENAME_EXCHANGE (glibc >= 2.28)
#include <cstring>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "io/output_fs.h"
#include "lutdose/error.h"

namespace lutdose {

namespace output_fs {

//! Temporary names: this prefix and 12 random letters or digits, in the output's parent. Leftover
//! cleaning goes by this name, so it must be one no user would choose (a user's `.lutdose-config`
//! matched the 6-character form of 0.5 and was removed).
constexpr const char* kStagingPrefix = ".lutdose-tmp-";
constexpr size_t kRandomChars = 12;
constexpr const char* kManifest = "manifest.json";
constexpr const char* kManifestFormat = "lutdose-result-set";
//! Present in a staging directory from its creation until just before it is published: marks a
//! partial set as lutdose's own, so that the next run may remove it once its run is dead.
constexpr const char* kStagingMarker = ".lutdose-staging";
//! An existing file larger than this is not an earlier output of lutdose plan (whose output is a
//! few kB): it is not read.
constexpr off_t kMaxPreviousFileBytes = 16 * 1024 * 1024;
//! A file of an earlier result set larger than this is not read to compare it with its manifest
//! (it is then treated as not lutdose's): far above any set lutdose writes.
constexpr off_t kMaxSetFileBytes = off_t{4} * 1024 * 1024 * 1024;

//! Errors the user can fix (a path problem) are input errors (exit 2); the others (ENOSPC, EIO,
//! EFBIG, EDQUOT, ...) are output errors (exit 1). Both carry strerror's text.
bool user_fixable(int err) {
  switch (err) {
    case EACCES: case EPERM: case EROFS: case ENOTDIR: case EEXIST: case ENOTEMPTY:
    case EISDIR: case ELOOP: case ENAMETOOLONG: case ENOENT:
      return true;
    default:
      return false;
  }
}

[[noreturn]] void fail(const std::string& what, int err) {
  const std::string msg = what + ": " + std::strerror(err);
  if (user_fixable(err)) throw InputError(msg);
  throw OutputError(msg);
}

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }


std::string random_chars(size_t n) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device device;  // getrandom(2)
  std::uniform_int_distribution<size_t> pick(0, sizeof(alphabet) - 2);
  std::string s;
  for (size_t i = 0; i < n; ++i) s += alphabet[pick(device)];
  return s;
}

bool is_temporary_name(const std::string& name) {
  const size_t prefix = std::strlen(kStagingPrefix);
  if (name.size() != prefix + kRandomChars || name.compare(0, prefix, kStagingPrefix) != 0) return false;
  for (size_t i = prefix; i < name.size(); ++i)
    if (!std::isalnum(static_cast<unsigned char>(name[i]))) return false;
  return true;
}

//! The directory part of `path` ("." for a bare name, "/" for a name in the root).
std::string parent_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
}

Location split_location(const std::string& path) {
  if (path.empty())
    throw InputError("output: the name is empty; expected the name of a new or empty directory (or file)");
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const auto slash = p.rfind('/');
  Location loc{parent_of(p), slash == std::string::npos ? p : p.substr(slash + 1), path};
  if (loc.name.empty() || loc.name == "/" || loc.name == "." || loc.name == "..")
    throw InputError("output " + in_quotes(path) + ": its last part is " + in_quotes(loc.name) +
                     "; expected a name of its own (not '.' or '..'), e.g. --out results/p004");
  return loc;
}

Fd open_directory(const std::string& path) {
  return Fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
}

//! The names lutdose itself puts in a result set or a staging directory.
bool is_lutdose_name(const std::string& name) {
  if (name == kStagingMarker || is_case_file_name(name)) return true;
  for (const auto& n : result_set_names())
    if (n == name) return true;
  return false;
}

std::vector<std::string> directory_entries(int dirfd) {
  std::vector<std::string> names;
  const int copy = ::dup(dirfd);
  if (copy < 0) return names;
  DIR* dir = ::fdopendir(copy);
  if (dir == nullptr) {
    ::close(copy);
    return names;
  }
  ::rewinddir(dir);
  while (const dirent* e = ::readdir(dir)) {
    const std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(dir);
  return names;
}

//! Reads the regular file `name` in `dirfd` whole into `text`, following no link and not waiting on
//! a FIFO put there meanwhile; false if it is not a regular file, larger than `limit`, or unreadable.
bool read_regular(int dirfd, const std::string& name, off_t limit, std::string& text) {
  Fd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  struct stat st;
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > limit) return false;
  text.assign(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::read(fd.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

//! Lowercase hex of a digest.
std::string hex_of(const unsigned char* digest, unsigned int length) {
  static const char hex[] = "0123456789abcdef";
  std::string s;
  for (unsigned int i = 0; i < length; ++i) {
    s += hex[digest[i] >> 4];
    s += hex[digest[i] & 0xF];
  }
  return s;
}

//! SHA-256 fed piece by piece (OpenSSL EVP), for files written or read in pieces.
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1)
      throw std::runtime_error("SHA-256 (OpenSSL EVP_DigestInit_ex) failed");
  }
  void update(const char* bytes, size_t n) {
    if (EVP_DigestUpdate(ctx_.get(), bytes, n) != 1) throw std::runtime_error("SHA-256 (OpenSSL EVP_DigestUpdate) failed");
  }
  std::string hex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_DigestFinal_ex(ctx_.get(), digest, &length) != 1)
      throw std::runtime_error("SHA-256 (OpenSSL EVP_DigestFinal_ex) failed");
    return hex_of(digest, length);
  }

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

bool regular_file_sha256(int dirfd, const std::string& name, off_t limit, uint64_t& size, std::string& sha) {
  Fd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  struct stat st;
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > limit) return false;
  constexpr size_t kBlockBytes = 1 << 20;  // 1 MiB: few system calls, little memory
  std::string block(kBlockBytes, '\0');
  Sha256 hash;
  size = 0;
  for (;;) {
    const ssize_t n = ::read(fd.get(), block.data(), block.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) break;
    hash.update(block.data(), static_cast<size_t>(n));
    size += static_cast<uint64_t>(n);
  }
  sha = hash.hex();
  return true;
}

//! A lutdose manifest's file entries: name -> (size in bytes, SHA-256).
using Listed = std::map<std::string, std::pair<uint64_t, std::string>>;

//! True when `dirfd` holds a lutdose manifest.json; its entries in `listed`.
bool read_manifest(int dirfd, Listed& listed) {
  std::string text;
  if (!read_regular(dirfd, kManifest, kMaxPreviousFileBytes, text)) return false;
  const auto m = nlohmann::json::parse(text, nullptr, false);
  if (!m.is_object() || m.value("format", std::string()) != kManifestFormat || !m.contains("files") ||
      !m["files"].is_array())
    return false;
  for (const auto& e : m["files"]) {
    if (!e.is_object() || !e.contains("name") || !e["name"].is_string() || !e.contains("size_bytes") ||
        !e["size_bytes"].is_number_unsigned() || !e.contains("sha256") || !e["sha256"].is_string())
      return false;
    listed[e["name"].get<std::string>()] = {e["size_bytes"].get<uint64_t>(), e["sha256"].get<std::string>()};
  }
  return true;
}

//! True when the file `name` in `dirfd` has the size and SHA-256 its manifest entry gives.
bool as_listed(int dirfd, const std::string& name, const Listed& listed) {
  const auto it = listed.find(name);
  uint64_t size = 0;
  std::string sha;
  return it != listed.end() && regular_file_sha256(dirfd, name, kMaxSetFileBytes, size, sha) &&
         size == it->second.first && sha == it->second.second;
}

//! Entries of the directory `dirfd` that are not part of a lutdose result set: any name lutdose
//! does not write, anything that is not a regular file, a manifest.json that is not lutdose's,
//! and result files that differ from their manifest entry (e.g. edited by hand). In a `staging`
//! directory the marker is lutdose's too and, while it is there, the set may be partial.
//! Empty: the directory is empty or holds only a lutdose set, exactly as lutdose wrote it.
std::vector<std::string> foreign_entries(int dirfd, bool staging) {
  std::vector<std::string> foreign, results;
  bool marker = false, manifest = false;
  for (const auto& n : directory_entries(dirfd)) {
    struct stat st;
    const bool own_name = is_lutdose_name(n) && (staging || n != kStagingMarker);
    if (!own_name || ::fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) {
      foreign.push_back(n);
    } else if (n == kStagingMarker) {
      marker = true;
    } else if (n == kManifest) {
      manifest = true;
    } else {
      results.push_back(n);
    }
  }
  if (marker) return foreign;  // a staging set, partial until its run drops the marker
  Listed listed;
  if (manifest && !read_manifest(dirfd, listed)) foreign.push_back("manifest.json (not a lutdose manifest)");
  for (const auto& n : results)
    if (!as_listed(dirfd, n, listed)) foreign.push_back(n + " (not as its lutdose manifest.json lists it)");
  return foreign;
}

//! True when a result set of `kind` holds a file `name` (manifest.json aside).
bool kind_holds(ResultKind kind, const std::string& name) {
  static const std::vector<std::string> run = {"results.json", "results.csv", "results.h5", "report.html"};
  static const std::vector<std::string> synth = {"tacs.csv", "patients.csv", "truth.csv", "synth.json"};
  static const std::vector<std::string> exported = {"patients.csv", "vois.csv",       "candidates.csv",
                                                    "targets.csv",  "budget.csv",     "cumulative.csv",
                                                    "failures.csv", "notes.csv",      "points.csv",
                                                    "population.csv", "population_omega.csv"};
  if (kind == ResultKind::synth && is_case_file_name(name)) return true;
  const auto& names = kind == ResultKind::run ? run : (kind == ResultKind::synth ? synth : exported);
  return std::find(names.begin(), names.end(), name) != names.end();
}

const char* kind_name(ResultKind kind) {
  switch (kind) {
    case ResultKind::run: return "lutdose run";
    case ResultKind::synth: return "lutdose synth";
    case ResultKind::store_export: return "lutdose export";
  }
  return "lutdose";
}

//! Empty when the lutdose set in `dirfd` (one without foreign entries) may be replaced by a set of
//! `kind`: each of its files but manifest.json is a name a `kind` set holds. Otherwise what the
//! set is, for a message: "a lutdose synth result set", or "... of several kinds".
std::string other_kind(int dirfd, ResultKind kind) {
  const ResultKind kinds[] = {ResultKind::run, ResultKind::synth, ResultKind::store_export};
  bool fits[] = {true, true, true};
  for (const auto& n : directory_entries(dirfd)) {
    if (n == kManifest || n == kStagingMarker) continue;
    for (size_t i = 0; i < 3; ++i) fits[i] = fits[i] && kind_holds(kinds[i], n);
  }
  if (fits[static_cast<size_t>(kind)]) return "";
  std::string held;
  for (size_t i = 0; i < 3; ++i)
    if (fits[i]) held += (held.empty() ? "" : " or ") + std::string(kind_name(kinds[i]));
  return held.empty() ? "a lutdose result set of several kinds" : "a " + held + " result set";
}

//! Removes, from the directory `name` in `parentfd`, only lutdose's own names, then the directory
//! itself if that emptied it. Follows no link; leaves anything else where it is.
void remove_lutdose_directory(int parentfd, const std::string& name) {
  Fd dir(::openat(parentfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir.valid()) return;
  // The manifest and the marker last: a removal killed midway must leave files that still match
  // the manifest (or a marked staging set), which the next run recognises as lutdose's and removes.
  for (const auto& n : directory_entries(dir.get()))
    if (is_lutdose_name(n) && n != kManifest && n != kStagingMarker) ::unlinkat(dir.get(), n.c_str(), 0);
  ::unlinkat(dir.get(), kManifest, 0);
  ::unlinkat(dir.get(), kStagingMarker, 0);
  ::unlinkat(parentfd, name.c_str(), AT_REMOVEDIR);
}

//! True when `fd` (opened from `name` in `parentfd`) is locked by us without waiting and `name`
//! still refers to it (a concurrent cleaner may have removed the name in between).
bool lock_and_verify(int parentfd, const std::string& name, int fd) {
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) return false;
  struct stat a, b;
  return ::fstat(fd, &a) == 0 && ::fstatat(parentfd, name.c_str(), &b, AT_SYMLINK_NOFOLLOW) == 0 &&
         a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

//! Removes the leftovers of killed lutdose runs in `parentfd`: entries named like lutdose's
//! temporaries, owned by this user, not links, whose lock nobody holds (their run is dead), and
//! that are lutdose's (a staging marker or a lutdose set inside; a temporary file of plan).
void remove_leftovers(int parentfd) {
  for (const auto& n : directory_entries(parentfd)) {
    struct stat st;
    if (!is_temporary_name(n) || ::fstatat(parentfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        st.st_uid != ::geteuid())
      continue;
    if (S_ISDIR(st.st_mode)) {
      Fd dir(::openat(parentfd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (dir.valid() && lock_and_verify(parentfd, n, dir.get()) && foreign_entries(dir.get(), true).empty())
        remove_lutdose_directory(parentfd, n);
    } else if (S_ISREG(st.st_mode)) {
      Fd file(::openat(parentfd, n.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
      if (file.valid() && lock_and_verify(parentfd, n, file.get())) ::unlinkat(parentfd, n.c_str(), 0);
    }
  }
}

void write_all(int fd, const std::string& bytes, const std::string& shown) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("cannot write " + shown, errno);
    }
    done += static_cast<size_t>(n);
  }
}

//! Writes `bytes` to `fd`, flushes them to the device and closes `fd`; errors name `shown`.
void write_sync_close(Fd& fd, const std::string& bytes, const std::string& shown) {
  write_all(fd.get(), bytes, shown);
  if (::fsync(fd.get()) != 0) fail("cannot write " + shown, errno);
  if (const int err = fd.close_checked()) fail("cannot write " + shown, err);
}

void sync_directory(int dirfd, const std::string& shown) {
  if (::fsync(dirfd) != 0 && errno != EINVAL) fail("cannot flush the directory " + in_quotes(shown), errno);
}

//! Flushes the entry of the directory `path`, just created, into its parent: without it a power
//! cut may lose a new parent of the output directory, and the set with it, after success.
void sync_entry_of(const std::string& path) {
  const std::string parent = parent_of(path);
  Fd fd = open_directory(parent);
  if (!fd.valid()) fail("cannot flush the directory " + in_quotes(parent), errno);
  sync_directory(fd.get(), parent);
}

mode_t current_umask() {
  const mode_t m = ::umask(0);
  ::umask(m);
  return m;
}

//! A fresh staging directory in `parentfd`, created exclusively, locked, with its marker.
struct Staging {
  std::string name;
  Fd fd;
};

Staging make_staging(int parentfd, const std::string& parent_shown) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    Staging s{kStagingPrefix + random_chars(kRandomChars), Fd()};
    if (::mkdirat(parentfd, s.name.c_str(), 0700) != 0) {
      if (errno == EEXIST) continue;
      fail("cannot create a directory in " + in_quotes(parent_shown), errno);
    }
    s.fd = Fd(::openat(parentfd, s.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!s.fd.valid() || !lock_and_verify(parentfd, s.name, s.fd.get())) continue;  // a cleaner has it
    Fd marker(::openat(s.fd.get(), kStagingMarker, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    const int err = errno;
    if (!marker.valid() || ::fchmod(s.fd.get(), 0777 & ~current_umask()) != 0) {
      remove_lutdose_directory(parentfd, s.name);
      fail("cannot create a directory in " + in_quotes(parent_shown), marker.valid() ? errno : err);
    }
    return s;
  }
  throw OutputError("cannot create a temporary directory of a unique name in " + in_quotes(parent_shown));
}

//! Creates the missing directories of `parent`; returns those created here, outermost first.
std::vector<std::string> make_parents(const std::string& parent);

void remove_created(const std::vector<std::string>& created) {
  for (auto it = created.rbegin(); it != created.rend(); ++it) ::rmdir(it->c_str());  // only if empty
}

std::vector<std::string> make_parents(const std::string& parent) {
  std::vector<std::string> created;
  size_t pos = 0;
  while (pos <= parent.size()) {
    size_t next = parent.find('/', pos);
    if (next == std::string::npos) next = parent.size();
    const std::string prefix = parent.substr(0, next);
    pos = next + 1;
    if (prefix.empty()) continue;  // the root of an absolute path
    if (::mkdir(prefix.c_str(), 0777) == 0) {
      created.push_back(prefix);
      continue;
    }
    const int err = errno;
    struct stat st;
    if (err == EEXIST && ::stat(prefix.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
    remove_created(created);
    fail("cannot create the directory " + in_quotes(prefix), err == EEXIST ? ENOTDIR : err);
  }
  return created;
}

//! Throws InputError unless the existing `loc` (in `parentfd`) may be replaced by a result set.
//! Takes a shared lock on `fd`, waiting boundedly (1000 x 10 ms) for a run that holds it
//! exclusively (removing a swapped-out set takes milliseconds). False when still held after that.
bool lock_shared_bounded(int fd) {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    if (::flock(fd, LOCK_SH | LOCK_NB) == 0) return true;
    if (errno != EWOULDBLOCK && errno != EINTR) return false;
    ::usleep(10000);
  }
  return false;
}

void check_replaceable(int parentfd, const Location& loc, ResultKind kind) {
  struct stat st;
  if (::fstatat(parentfd, loc.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return;
    fail("cannot use the output directory " + in_quotes(loc.shown), errno);
  }
  if (S_ISLNK(st.st_mode))
    throw InputError("output directory " + in_quotes(loc.shown) +
                     " is a symbolic link; lutdose follows no links: give the directory itself");
  if (!S_ISDIR(st.st_mode))
    throw InputError("output directory " + in_quotes(loc.shown) + " exists and is not a directory");
  Fd dir(::openat(parentfd, loc.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir.valid()) fail("cannot use the output directory " + in_quotes(loc.shown), errno);
  // A concurrent run may just have swapped this set out and be removing it (holding its lock):
  // checking it unlocked would see a set with files missing and refuse it as not lutdose's. A
  // shared lock waits for that removal (then the directory is empty) or keeps it from starting.
  if (!lock_shared_bounded(dir.get()))
    fail("cannot use the output directory " + in_quotes(loc.shown) + " (locked by another run for 10 s)", EWOULDBLOCK);
  auto foreign = foreign_entries(dir.get(), false);
  if (foreign.empty()) {
    const std::string held = other_kind(dir.get(), kind);
    if (held.empty()) return;
    throw InputError("output directory " + in_quotes(loc.shown) + " holds " + held + ", which a " +
                     kind_name(kind) + " set does not replace (a set is replaced only by one of its own "
                     "kind); choose another directory");
  }
  std::sort(foreign.begin(), foreign.end());
  std::string list;
  for (size_t i = 0; i < foreign.size() && i < 5; ++i) list += (i ? ", " : "") + foreign[i];
  if (foreign.size() > 5) list += ", ... (" + std::to_string(foreign.size()) + " in all)";
  throw InputError("output directory " + in_quotes(loc.shown) + " holds " + list +
                   ": not a lutdose result set, which lutdose would replace; choose a new or empty "
                   "directory (lutdose never removes files it did not write)");
}

//! The nearest existing ancestor of `path` must be a directory we may write into.
void check_creatable(const std::string& path) {
  std::string p = path;
  struct stat st;
  while (::stat(p.c_str(), &st) != 0) {
    if (errno != ENOENT) fail("cannot use " + in_quotes(p), errno);
    p = parent_of(p);
  }
  if (!S_ISDIR(st.st_mode)) fail("cannot create a directory in " + in_quotes(p), ENOTDIR);
  if (::access(p.c_str(), W_OK | X_OK) != 0) fail("cannot write into " + in_quotes(p), errno);
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

//! A file of a set as its manifest lists it.
struct ManifestEntry {
  std::string name;
  uint64_t size_bytes = 0;
  std::string sha256;
};

std::string manifest_text(const std::string& run_id, const std::string& version,
                          const std::vector<ManifestEntry>& files) {
  nlohmann::ordered_json m;
  m["format"] = kManifestFormat;
  m["format_version"] = 1;
  m["run_id"] = run_id;
  m["lutdose_version"] = version;
  m["created_utc"] = utc_now();
  m["files"] = nlohmann::ordered_json::array();
  for (const auto& f : files)
    m["files"].push_back({{"name", f.name}, {"size_bytes", f.size_bytes}, {"sha256", f.sha256}});
  return m.dump(2) + "\n";
}

//! Creates the file `name` in the staging directory (exclusively, following no link).
Fd create_in_staging(const Staging& s, const std::string& name, const std::string& shown) {
  Fd fd(::openat(s.fd.get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666));
  if (!fd.valid()) fail("cannot create " + shown, errno);
  return fd;
}

//! Publishes the staging directory as `loc` in one step; a previous set there is swapped out and
//! removed (from it, only lutdose's names).
//! Opens and locks what the swap took out (now under the staging name `name`). Its lock may still
//! be held for a moment by the run that published it (between its rename and its unlock) or by
//! another run's cleaning, which then removes it: wait for it, boundedly (kLockWaitTries x 10 ms).
//! An invalid Fd with errno ENOENT: it is gone (removed by that cleaning); EWOULDBLOCK: still held.
Fd lock_swapped_out(int parentfd, const std::string& name) {
  constexpr int kLockWaitTries = 1000;  // 10 s: far longer than a publisher's rename-to-unlock step
  for (int attempt = 0; attempt < kLockWaitTries; ++attempt) {
    Fd old(::openat(parentfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!old.valid() || ::flock(old.get(), LOCK_EX | LOCK_NB) == 0) return old;
    ::usleep(10000);
  }
  errno = EWOULDBLOCK;
  return Fd();
}

void publish(int parentfd, const Staging& s, const Location& loc, ResultKind kind) {
  if (::renameat2(parentfd, s.name.c_str(), parentfd, loc.name.c_str(), RENAME_NOREPLACE) == 0) {
    ::flock(s.fd.get(), LOCK_UN);  // published: no longer a staging directory to guard
    return;
  }
  const int err = errno;
  if (err != EEXIST && err != ENOTEMPTY) fail("cannot publish the results as " + in_quotes(loc.shown), err);
  check_replaceable(parentfd, loc, kind);
  if (::renameat2(parentfd, s.name.c_str(), parentfd, loc.name.c_str(), RENAME_EXCHANGE) != 0)
    fail("cannot publish the results as " + in_quotes(loc.shown), errno);
  ::flock(s.fd.get(), LOCK_UN);
  // What was swapped out (now under the staging name) is checked again, locked against other runs'
  // cleaning: someone may have put another directory at `loc` since the check above.
  Fd old = lock_swapped_out(parentfd, s.name);
  if (!old.valid() && errno == ENOENT) return;  // a concurrent run removed the previous set already
  if (!old.valid() && errno == EWOULDBLOCK) return;  // still held after 10 s: the next run cleans it
  if (!old.valid() || !foreign_entries(old.get(), false).empty() || !other_kind(old.get(), kind).empty()) {
    if (::renameat2(parentfd, s.name.c_str(), parentfd, loc.name.c_str(), RENAME_EXCHANGE) != 0)
      fail("cannot put back what was at " + in_quotes(loc.shown) + " (now at " + in_quotes(s.name) + ")", errno);
    throw InputError("output directory " + in_quotes(loc.shown) +
                     " was replaced by something else while lutdose wrote its results; it is left as it "
                     "is and the new results are not written (run again)");
  }
  remove_lutdose_directory(parentfd, s.name);  // the previous set
}

std::string random_run_id() {
  std::random_device device;
  char text[40];
  std::snprintf(text, sizeof text, "%08x%08x%08x%08x", device(), device(), device(), device());
  return text;
}

}  // namespace output_fs

using namespace output_fs;

bool is_case_file_name(const std::string& name) {
  constexpr size_t prefix = 5, suffix = 5;  // "case-", ".json"
  if (name.size() <= prefix + suffix || name.size() > prefix + 64 + suffix || name.compare(0, prefix, "case-") != 0 ||
      name.compare(name.size() - suffix, suffix, ".json") != 0)
    return false;
  for (size_t i = prefix; i < name.size() - suffix; ++i)
    if (!std::isalnum(static_cast<unsigned char>(name[i])) && name[i] != '_' && name[i] != '-') return false;
  return true;
}

const std::vector<std::string>& result_set_names() {
  static const std::vector<std::string> names = {
      "results.json", "results.csv",    "results.h5",  "tacs.csv",       "patients.csv", "truth.csv",
      "synth.json",   "vois.csv",       "targets.csv", "candidates.csv", "budget.csv",   "cumulative.csv",
      "failures.csv", "notes.csv",      "points.csv", "population.csv", "population_omega.csv", "report.html",
      kManifest};
  return names;
}

std::string sha256_hex(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("SHA-256 (OpenSSL EVP_Digest) failed");
  return hex_of(digest, length);
}

void check_output_dir(const std::string& dir, ResultKind kind) {
  const auto loc = split_location(dir);
  Fd parent = open_directory(loc.parent);
  if (!parent.valid()) {
    if (errno != ENOENT) fail("cannot use the directory " + in_quotes(loc.parent), errno);
    check_creatable(loc.parent);
    return;
  }
  check_replaceable(parent.get(), loc, kind);
  if (::access(loc.parent.c_str(), W_OK | X_OK) != 0) fail("cannot write into " + in_quotes(loc.parent), errno);
}

struct ResultSetWriter::Impl {
  Location loc;
  ResultKind kind;
  std::string lutdose_version;
  std::vector<std::string> created;  //!< parents made here, outermost first
  Fd parent;
  Staging staging;
  bool published = false;
  std::vector<ManifestEntry> files;  //!< the files ended so far
  Fd file;                           //!< the file being written (files.back() when valid)
  std::unique_ptr<Sha256> hash;      //!< of the file being written

  std::string shown(const std::string& name) const { return name + " for " + in_quotes(loc.shown); }
  //! Flushes the file being written to the device, closes it and records its SHA-256.
  void end_file() {
    if (!file.valid()) return;
    const std::string what = "cannot write " + shown(files.back().name);
    if (::fsync(file.get()) != 0) fail(what, errno);
    if (const int err = file.close_checked()) fail(what, err);
    files.back().sha256 = hash->hex();
  }
};

ResultSetWriter::ResultSetWriter(const std::string& dir, ResultKind kind, const std::string& lutdose_version)
    : impl_(std::make_unique<Impl>()) {
  Impl& w = *impl_;
  w.loc = split_location(dir);
  w.kind = kind;
  w.lutdose_version = lutdose_version;
  w.created = make_parents(w.loc.parent);
  try {
    for (const auto& d : w.created) sync_entry_of(d);
    w.parent = open_directory(w.loc.parent);
    if (!w.parent.valid()) fail("cannot use the directory " + in_quotes(w.loc.parent), errno);
    remove_leftovers(w.parent.get());
    check_replaceable(w.parent.get(), w.loc, kind);
    w.staging = make_staging(w.parent.get(), w.loc.parent);
  } catch (...) {
    remove_created(w.created);
    throw;
  }
}

ResultSetWriter::~ResultSetWriter() {
  Impl& w = *impl_;
  if (w.published) return;
  w.file.reset();
  if (w.staging.fd.valid()) remove_lutdose_directory(w.parent.get(), w.staging.name);
  remove_created(w.created);
}

void ResultSetWriter::begin_file(const std::string& name) {
  Impl& w = *impl_;
  if (w.published) throw std::logic_error("ResultSetWriter::begin_file: the set is published");
  if (!kind_holds(w.kind, name))
    throw std::logic_error("write_output_files: " + name + " is not a file name of a " + kind_name(w.kind) + " set");
  w.end_file();
  w.file = create_in_staging(w.staging, name, w.shown(name));
  w.hash = std::make_unique<Sha256>();
  w.files.push_back({name, 0, ""});
}

void ResultSetWriter::write(const std::string& bytes) {
  Impl& w = *impl_;
  if (!w.file.valid()) throw std::logic_error("ResultSetWriter::write: no file begun");
  write_all(w.file.get(), bytes, w.shown(w.files.back().name));
  w.hash->update(bytes.data(), bytes.size());
  w.files.back().size_bytes += bytes.size();
}

std::string ResultSetWriter::publish() {
  Impl& w = *impl_;
  if (w.published) throw std::logic_error("ResultSetWriter::publish: published already");
  w.end_file();
  // The manifest last, then the marker dropped: a set is complete once its marker is gone.
  const std::string run_id = random_run_id();
  Fd manifest = create_in_staging(w.staging, kManifest, w.shown(kManifest));
  write_sync_close(manifest, manifest_text(run_id, w.lutdose_version, w.files), w.shown(kManifest));
  if (::unlinkat(w.staging.fd.get(), kStagingMarker, 0) != 0) fail("cannot finish " + in_quotes(w.loc.shown), errno);
  sync_directory(w.staging.fd.get(), w.loc.shown);
  output_fs::publish(w.parent.get(), w.staging, w.loc, w.kind);
  w.published = true;
  sync_directory(w.parent.get(), w.loc.parent);
  return run_id;
}

std::string write_output_files(const std::string& dir, ResultKind kind, const std::vector<OutputFile>& files,
                               const std::string& lutdose_version) {
  ResultSetWriter w(dir, kind, lutdose_version);
  for (const auto& f : files) {
    w.begin_file(f.name);
    w.write(f.bytes);
  }
  return w.publish();
}

namespace output_fs {

//! Throws InputError unless the existing `loc` may be replaced by the new file; false when there
//! is no `loc`.
bool check_file_replaceable(int parentfd, const Location& loc,
                            const std::function<bool(const std::string&)>& is_previous_output) {
  struct stat st;
  if (::fstatat(parentfd, loc.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return false;
    fail("cannot use the output file " + in_quotes(loc.shown), errno);
  }
  if (S_ISLNK(st.st_mode))
    throw InputError("output file " + in_quotes(loc.shown) + " is a symbolic link; lutdose follows no links");
  if (S_ISDIR(st.st_mode)) throw InputError("output file " + in_quotes(loc.shown) + " is a directory");
  std::string text;
  if (!S_ISREG(st.st_mode) || !read_regular(parentfd, loc.name, kMaxPreviousFileBytes, text) ||
      !is_previous_output(text))
    throw InputError("output file " + in_quotes(loc.shown) +
                     " exists and is not an earlier output of lutdose; choose another name "
                     "(lutdose never overwrites files it did not write)");
  return true;
}

//! An exclusively created, locked temporary file in `parentfd`; its name in `name`.
Fd make_temporary_file(int parentfd, const std::string& parent_shown, std::string& name) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    name = kStagingPrefix + random_chars(kRandomChars);
    Fd fd(::openat(parentfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666));
    if (!fd.valid()) {
      if (errno == EEXIST) continue;
      fail("cannot create a file in " + in_quotes(parent_shown), errno);
    }
    if (lock_and_verify(parentfd, name, fd.get())) return fd;
  }
  throw OutputError("cannot create a temporary file of a unique name in " + in_quotes(parent_shown));
}

//! Renames the temporary `temp` to `loc`; a file that appeared there meanwhile is checked again
//! rather than overwritten unseen. A replaced file is swapped out (RENAME_EXCHANGE), locked and
//! checked again under `temp`: if it is no longer an earlier output (someone put another file at
//! `loc` since the check), it is swapped back untouched and the run fails; else it is removed.
void rename_over(int parentfd, const std::string& temp, const Location& loc, bool exists,
                 const std::function<bool(const std::string&)>& is_previous_output) {
  if (!exists) {
    if (::renameat2(parentfd, temp.c_str(), parentfd, loc.name.c_str(), RENAME_NOREPLACE) == 0) return;
    if (errno != EEXIST) fail("cannot write " + in_quotes(loc.shown), errno);
    check_file_replaceable(parentfd, loc, is_previous_output);
  }
  if (::renameat2(parentfd, temp.c_str(), parentfd, loc.name.c_str(), RENAME_EXCHANGE) != 0)
    fail("cannot write " + in_quotes(loc.shown), errno);
  Fd old(::openat(parentfd, temp.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  std::string text;
  const bool earlier = old.valid() && lock_and_verify(parentfd, temp, old.get()) &&
                       read_regular(parentfd, temp, kMaxPreviousFileBytes, text) && is_previous_output(text);
  if (!earlier) {
    if (::renameat2(parentfd, temp.c_str(), parentfd, loc.name.c_str(), RENAME_EXCHANGE) != 0)
      fail("cannot put back what was at " + in_quotes(loc.shown) + " (now at " + in_quotes(temp) + ")", errno);
    throw InputError("output file " + in_quotes(loc.shown) +
                     " was replaced by something else while lutdose wrote it; it is left as it is and the "
                     "new file is not written (run again)");
  }
  if (::unlinkat(parentfd, temp.c_str(), 0) != 0) fail("cannot remove the earlier " + in_quotes(loc.shown), errno);
}

}  // namespace output_fs

void check_file_writable(const std::string& path,
                         const std::function<bool(const std::string& content)>& is_previous_output) {
  const auto loc = split_location(path);
  Fd parent = open_directory(loc.parent);
  if (!parent.valid()) fail("cannot write " + in_quotes(path), errno);
  check_file_replaceable(parent.get(), loc, is_previous_output);
}

void write_file_atomically(const std::string& path, const std::string& bytes,
                           const std::function<bool(const std::string& content)>& is_previous_output) {
  const auto loc = split_location(path);
  Fd parent = open_directory(loc.parent);
  if (!parent.valid()) fail("cannot write " + in_quotes(path), errno);
  remove_leftovers(parent.get());
  const bool exists = check_file_replaceable(parent.get(), loc, is_previous_output);
  std::string name;
  Fd fd = make_temporary_file(parent.get(), loc.parent, name);
  try {
    // The file stays open (and locked against other runs' cleaning) until it has its name.
    write_all(fd.get(), bytes, in_quotes(path));
    if (::fsync(fd.get()) != 0) fail("cannot write " + in_quotes(path), errno);
    rename_over(parent.get(), name, loc, exists, is_previous_output);
    if (const int err = fd.close_checked()) fail("cannot write " + in_quotes(path), err);
  } catch (...) {
    ::unlinkat(parent.get(), name.c_str(), 0);
    throw;
  }
  sync_directory(parent.get(), loc.parent);
}

namespace {
//! The member with_own_checksum appends (then 64 hex digits and kChecksumEnd).
constexpr const char* kChecksumMember = ",\n  \"lutdose_sha256\": \"";
constexpr const char* kChecksumEnd = "\"\n}\n";
}  // namespace

std::string with_own_checksum(const std::string& json_object_text) {
  const size_t close = json_object_text.find_last_not_of(" \t\r\n");
  if (close == std::string::npos || json_object_text[close] != '}')
    throw std::logic_error("with_own_checksum: not a JSON object");
  const size_t last = json_object_text.find_last_not_of(" \t\r\n", close - 1);
  if (last == std::string::npos || json_object_text[last] == '{')
    throw std::logic_error("with_own_checksum: an empty JSON object");
  const std::string body = json_object_text.substr(0, last + 1);
  return body + kChecksumMember + sha256_hex(body) + kChecksumEnd;
}

bool has_own_checksum(const std::string& text) {
  const size_t member = std::strlen(kChecksumMember), end = std::strlen(kChecksumEnd), hex = 64;
  if (text.size() <= member + hex + end) return false;
  const size_t at = text.size() - (member + hex + end);
  return text.compare(at, member, kChecksumMember) == 0 && text.compare(text.size() - end, end, kChecksumEnd) == 0 &&
         text.compare(at + member, hex, sha256_hex(text.substr(0, at))) == 0;
}

}  // namespace lutdose
