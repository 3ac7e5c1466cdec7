// Internal: the file-system helpers of output_dir.cpp shared with the results store
// (store_writer.cpp, store.cpp). Defined in output_dir.cpp; see lutdose/io/output_dir.h for the
// guarantees they serve. Linux only (renameat2, flock).
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace lutdose::output_fs {

//! A file descriptor closed when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  //! Closes now; 0, or the errno of a failed close (a delayed write error).
  int close_checked() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc == 0 ? 0 : errno;
  }

 private:
  int fd_;
};

//! Throws InputError (a path problem the user can fix: EACCES, ENOENT, EEXIST, ...) or OutputError
//! (ENOSPC, EIO, ...) with `what` and strerror(err).
[[noreturn]] void fail(const std::string& what, int err);
std::string in_quotes(const std::string& s);

//! An output path split into its parent directory and its own name (`shown`: as given).
struct Location {
  std::string parent, name, shown;
};
//! InputError for an empty name or a last part "." or "..".
Location split_location(const std::string& path);
Fd open_directory(const std::string& path);
//! The names in the directory `dirfd` (without "." and "..").
std::vector<std::string> directory_entries(int dirfd);
//! Reads the regular file `name` in `dirfd` whole (no link followed, at most `limit` bytes);
//! false when it is not a regular file, larger, or unreadable.
bool read_regular(int dirfd, const std::string& name, off_t limit, std::string& text);
//! The size and SHA-256 of the regular file `name` in `dirfd` (AT_FDCWD: `name` a path), read in
//! blocks (memory bounded whatever its size), following no link; false if it is not a regular file,
//! larger than `limit`, or unreadable.
bool regular_file_sha256(int dirfd, const std::string& name, off_t limit, uint64_t& size, std::string& sha);
//! Removes the unlocked temporary files and staging directories of killed lutdose runs in `parentfd`.
void remove_leftovers(int parentfd);
void write_all(int fd, const std::string& bytes, const std::string& shown);
//! fsync of a directory; OutputError/InputError naming `shown` on failure.
void sync_directory(int dirfd, const std::string& shown);
//! An exclusively created (O_EXCL), locked temporary file ".lutdose-tmp-" + 12 random characters in
//! `parentfd`; its name in `name`. Killed runs' temporaries of this form are removed by remove_leftovers.
Fd make_temporary_file(int parentfd, const std::string& parent_shown, std::string& name);
//! Renames the temporary `temp` to `loc` (see write_file_atomically): RENAME_NOREPLACE when
//! `exists` is false, else an exchange with the earlier output, checked by `is_previous_output`.
void rename_over(int parentfd, const std::string& temp, const Location& loc, bool exists,
                 const std::function<bool(const std::string&)>& is_previous_output);

}  // namespace lutdose::output_fs
