// The autocast part of the shim: libtorch's device-typed autocast state
// (at::autocast::{set,is}_autocast_enabled, {set,get}_autocast_dtype, the cast cache and
// its nesting), which tch 0.24 does not bind (its `autocast` drives the old CUDA-only
// switch). Every function catches C++ exceptions and returns them as a message the
// caller frees with df_shim_free; no exception crosses into Rust.

#include <ATen/autocast_mode.h>
#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

#include <cstdlib>

#include "df_guard.hpp"

extern "C" {

void df_shim_free(char* message) { std::free(message); }

char* df_autocast_is_available(int device_type, int* available) {
  return df_guarded([&] {
    *available =
        at::autocast::is_autocast_available(static_cast<c10::DeviceType>(device_type)) ? 1 : 0;
  });
}

char* df_autocast_is_enabled(int device_type, int* enabled) {
  return df_guarded([&] {
    *enabled = at::autocast::is_autocast_enabled(static_cast<c10::DeviceType>(device_type)) ? 1 : 0;
  });
}

char* df_autocast_set_enabled(int device_type, int enabled) {
  return df_guarded([&] {
    at::autocast::set_autocast_enabled(static_cast<c10::DeviceType>(device_type), enabled != 0);
  });
}

char* df_autocast_get_dtype(int device_type, int* scalar_type) {
  return df_guarded([&] {
    *scalar_type = static_cast<int>(
        at::autocast::get_autocast_dtype(static_cast<c10::DeviceType>(device_type)));
  });
}

char* df_autocast_set_dtype(int device_type, int scalar_type) {
  return df_guarded([&] {
    at::autocast::set_autocast_dtype(static_cast<c10::DeviceType>(device_type),
                                     static_cast<c10::ScalarType>(scalar_type));
  });
}

char* df_autocast_increment_nesting(int* depth) {
  return df_guarded([&] { *depth = at::autocast::increment_nesting(); });
}

char* df_autocast_decrement_nesting(int* depth) {
  return df_guarded([&] { *depth = at::autocast::decrement_nesting(); });
}

char* df_autocast_clear_cache() {
  return df_guarded([] { at::autocast::clear_cache(); });
}

}  // extern "C"
