// How every shim function returns: null, or a message for the Rust side (which frees it
// with df_shim_free); no C++ exception crosses into Rust.
#pragma once

#include <c10/util/Exception.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

// A message the Rust side owns and frees with df_shim_free (malloc'd; null when out of
// memory).
inline char* df_copy_message(const std::string& what) {
  char* out = static_cast<char*>(std::malloc(what.size() + 1));
  if (out != nullptr) {
    std::memcpy(out, what.c_str(), what.size() + 1);
  }
  return out;
}

// Runs f, returning null, or the message of the C++ exception it threw (libtorch's
// without its C++ stack trace): no exception crosses into Rust.
template <typename F>
char* df_guarded(F f) {
  try {
    f();
    return nullptr;
  } catch (const c10::Error& e) {
    return df_copy_message(e.what_without_backtrace());
  } catch (const std::exception& e) {
    return df_copy_message(e.what());
  } catch (...) {
    return df_copy_message("unknown C++ exception");
  }
}
