// Internal: small RAII helpers over the HDF5 C API, shared by hdf5_results.cpp and the results
// store (store_hdf5.cpp).
#pragma once

#include <hdf5.h>

#include <stdexcept>
#include <string>

namespace lutdose::hdf5 {

//! An HDF5 identifier closed by its close function (H5Fclose, H5Gclose, ...) when the handle
//! goes out of scope, so nothing leaks when an exception unwinds the writer.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  //! `failures` (optional) counts closes that fail, so that a writer can report them at its end.
  Handle(hid_t id, Closer closer, int* failures = nullptr) : id_(id), closer_(closer), failures_(failures) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& other) noexcept : id_(other.id_), closer_(other.closer_), failures_(other.failures_) {
    other.id_ = H5I_INVALID_HID;
  }
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = other.id_;
      closer_ = other.closer_;
      failures_ = other.failures_;
      other.id_ = H5I_INVALID_HID;
    }
    return *this;
  }
  ~Handle() { reset(); }

  hid_t get() const { return id_; }
  //! Closes now; returns the close function's status (0 when there was nothing to close).
  herr_t reset() {
    herr_t rc = 0;
    if (id_ >= 0 && closer_ != nullptr) rc = closer_(id_);
    if (rc < 0 && failures_ != nullptr) ++*failures_;
    id_ = H5I_INVALID_HID;
    return rc;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
  int* failures_ = nullptr;
};

//! Switches HDF5's automatic error printing off for the lifetime of the object and restores the
//! previous handler afterwards (errors are reported by exceptions instead).
class QuietHdf5Errors {
 public:
  QuietHdf5Errors() {
    if (H5Eget_auto2(H5E_DEFAULT, &func_, &data_) < 0) {
      func_ = nullptr;
      data_ = nullptr;
    }
    if (H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr) < 0)
      throw std::runtime_error("cannot write HDF5 results: H5Eset_auto2 failed");
  }
  QuietHdf5Errors(const QuietHdf5Errors&) = delete;
  QuietHdf5Errors& operator=(const QuietHdf5Errors&) = delete;
  // Restoring cannot be reported from a destructor; a failure leaves printing off.
  ~QuietHdf5Errors() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

//! The most specific entry of HDF5's error stack (e.g. "unable to open file: ... No such file
//! or directory"), then clears the stack. Called while already failing: the walk's and the
//! clear's own status only decide whether a detail is added.
inline std::string hdf5_error_detail() {
  std::string detail;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t* err, void* client) -> herr_t {
        if (n == 0 && err != nullptr && err->desc != nullptr)
          *static_cast<std::string*>(client) = err->desc;
        return 0;
      },
      &detail);
  H5Eclear2(H5E_DEFAULT);
  return detail;
}

//! A link name for `text`: '%' -> "%25" and '/' -> "%2F" (so every name decodes back to its
//! text), and the name "." (HDF5's "this group") -> "%2E".
inline std::string escape_name(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    if (ch == '%')
      out += "%25";
    else if (ch == '/')
      out += "%2F";
    else
      out += ch;
  }
  if (out == ".") out = "%2E";
  return out;
}

}  // namespace lutdose::hdf5
