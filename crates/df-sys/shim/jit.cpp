// TorchScript archives with extra files, and the tracer's state.
//
// tch 0.24's CModule::save writes no extra files (torch::jit::Module::save's ExtraFilesMap,
// the archive's `extra/` entries a reader gets with torch.jit.load(_extra_files=...)), and
// a tch trace whose end fails (an output the tracer cannot see) leaves the thread's tracing
// state set, so the next trace refuses to start. These functions re-save an archive's bytes
// with extra files, read one back, and report or abandon the tracing state. Every function
// returns null or a message the Rust side frees with df_shim_free; buffers handed out are
// malloc'd and freed with df_jit_free.

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/serialization/import.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>

#include "df_guard.hpp"

namespace {

// A malloc'd copy of `bytes` (the Rust side frees it with df_jit_free).
uint8_t* copy_out(const std::string& bytes) {
  auto* out = static_cast<uint8_t*>(std::malloc(bytes.size() == 0 ? 1 : bytes.size()));
  if (out == nullptr) {
    throw std::bad_alloc();
  }
  std::memcpy(out, bytes.data(), bytes.size());
  return out;
}

}  // namespace

extern "C" {

void df_jit_free(uint8_t* data) { std::free(data); }

// Loads the archive `data[0..len)` on the CPU and saves it again, with the `n` extra files
// `names[i]` (NUL-terminated) holding `values[i][0..value_lens[i])`, into a malloc'd
// buffer *out of *out_len bytes. The archive's own extra files are kept unless replaced.
char* df_jit_save_with_extra_files(const uint8_t* data, size_t len, const char* const* names,
                                   const uint8_t* const* values, const size_t* value_lens,
                                   size_t n, uint8_t** out, size_t* out_len) {
  return df_guarded([&] {
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), len));
    torch::jit::ExtraFilesMap kept;
    torch::jit::Module module = torch::jit::load(in, c10::Device(c10::kCPU), kept);
    torch::jit::ExtraFilesMap files;
    for (size_t i = 0; i < n; ++i) {
      files[names[i]] = std::string(reinterpret_cast<const char*>(values[i]), value_lens[i]);
    }
    std::ostringstream saved;
    module.save(saved, files);
    const std::string bytes = saved.str();
    *out = copy_out(bytes);
    *out_len = bytes.size();
  });
}

// The extra file `name` of the archive `data[0..len)`: *found is 1 and *out a malloc'd
// buffer of *out_len bytes, or *found is 0 (and *out null) when the archive has none.
char* df_jit_extra_file(const uint8_t* data, size_t len, const char* name, int* found,
                        uint8_t** out, size_t* out_len) {
  return df_guarded([&] {
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), len));
    caffe2::serialize::PyTorchStreamReader reader(&in);
    const std::string record = std::string("extra/") + name;
    *found = 0;
    *out = nullptr;
    *out_len = 0;
    if (reader.hasRecord(record)) {
      auto [bytes, size] = reader.getRecord(record);
      *out = copy_out(std::string(static_cast<const char*>(bytes.get()), size));
      *out_len = size;
      *found = 1;
    }
  });
}

// Whether this thread is inside a trace.
char* df_jit_is_tracing(int* tracing) {
  return df_guarded([&] { *tracing = torch::jit::tracer::isTracing() ? 1 : 0; });
}

// Ends this thread's trace without a graph (after a failed trace); nothing when none.
char* df_jit_abandon_tracing() {
  return df_guarded([&] {
    if (torch::jit::tracer::isTracing()) {
      torch::jit::tracer::abandon();
    }
  });
}

}  // extern "C"
