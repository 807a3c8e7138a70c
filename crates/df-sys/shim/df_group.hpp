// The process group the shim hands to Rust: a c10d backend (ProcessGroupGloo, or
// ProcessGroupNCCL with the `nccl` feature) and the store it rendezvoused through.
#pragma once

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "df_guard.hpp"

#include <chrono>
#include <cstdint>
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
