// The process group the shim hands to Rust: a c10d backend (ProcessGroupGloo, or
// ProcessGroupNCCL with the `nccl` feature) and the store it rendezvoused through.
#pragma once

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

struct DfProcessGroup {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> group;
  std::chrono::milliseconds timeout;
};

// The rendezvous: rank 0 serves a TCPStore at master_addr:port and waits for the others
// (torch.distributed's default group keys its store the same way).
inline c10::intrusive_ptr<c10d::Store> df_rendezvous(const char* master_addr, int port,
                                                    int rank, int world_size,
                                                    std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions options;
  options.port = static_cast<std::uint16_t>(port);
  options.isServer = rank == 0;
  options.numWorkers = static_cast<std::size_t>(world_size);
  options.waitWorkers = true;
  options.timeout = timeout;
  auto tcp = c10::make_intrusive<c10d::TCPStore>(std::string(master_addr), options);
  return c10::make_intrusive<c10d::PrefixStore>("default_pg", tcp);
}

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
