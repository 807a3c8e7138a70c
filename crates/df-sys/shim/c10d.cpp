// The distributed part of the shim: libtorch's own c10d engine (the TCPStore rendezvous
// and ProcessGroupGloo that torch.distributed runs on), which tch 0.24 does not bind.
// A group is created from explicit settings (the Rust side reads the environment), runs
// one collective at a time on tch tensors (a tch tensor is an at::Tensor*), and waits for
// it; every function catches C++ exceptions and returns them as a message the caller
// frees with df_shim_free: no exception crosses into Rust, and every wait is bounded by
// the group's timeout (Gloo's own, set in its options).

#include "df_group.hpp"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace {

// Every group of the process records each collective it enqueues in libtorch's one
// process-wide flight recorder, which adds a group's state to a std::map *before* taking
// its own lock (FlightRecorderDetail.hpp, recordWithResetEnabled, libtorch 2.11). Two
// groups enqueueing at once (ranks as threads of one process, or two groups driven from
// two threads) corrupt that map: a crash, or a lookup that never ends. The shim enqueues
// under this one lock; the waits happen outside it, so groups still run concurrently.
std::mutex& enqueue_lock() {
  static std::mutex lock;
  return lock;
}

template <typename F>
c10::intrusive_ptr<c10d::Work> enqueue(F f) {
  std::lock_guard<std::mutex> guard(enqueue_lock());
  return f();
}

void wait_for(DfProcessGroup* g, const c10::intrusive_ptr<c10d::Work>& work) {
  // Gloo's operations time out by themselves (the options' timeout); this bound is a
  // second guard at twice that.
  if (!work->wait(g->timeout * 2)) {
    throw std::runtime_error("timed out waiting for the collective");
  }
}

c10d::ReduceOp reduce_op(int op) {
  switch (op) {
    case 0:
      return c10d::ReduceOp(c10d::ReduceOp::SUM);
    case 1:
      return c10d::ReduceOp(c10d::ReduceOp::MAX);
    case 2:
      return c10d::ReduceOp(c10d::ReduceOp::MIN);
    case 3:
      return c10d::ReduceOp(c10d::ReduceOp::PRODUCT);
    default:
      throw std::invalid_argument("unknown reduce operation " + std::to_string(op));
  }
}

}  // namespace

extern "C" {

// device_kind: 0 the default device (the host name's address, else loopback), 1 the
// address of host name `device`, 2 the network interface `device`.
char* df_pg_gloo_new(const char* master_addr, int port, int rank, int world_size,
                     int64_t timeout_ms, int device_kind, const char* device,
                     int threads, DfProcessGroup** out) {
  *out = nullptr;
  return df_guarded([&] {
    auto timeout = std::chrono::milliseconds(timeout_ms);
    auto store = df_rendezvous(master_addr, port, rank, world_size, timeout);
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    switch (device_kind) {
      case 0:
        options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
        break;
      case 1:
        options->devices.push_back(
            c10d::ProcessGroupGloo::createDeviceForHostname(std::string(device)));
        break;
      case 2:
        options->devices.push_back(
            c10d::ProcessGroupGloo::createDeviceForInterface(std::string(device)));
        break;
      default:
        throw std::invalid_argument("unknown device kind");
    }
    if (threads > 0) {
      options->threads = threads;
    }
    auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world_size, options);
    *out = new DfProcessGroup{store, group, timeout};
  });
}

void df_pg_free(DfProcessGroup* g) {
  try {
    delete g;
  } catch (...) {
    // A destructor that throws has nothing left to report to.
  }
}

char* df_pg_allreduce(DfProcessGroup* g, at::Tensor* tensor, int op) {
  return df_guarded([&] {
    std::vector<at::Tensor> tensors{*tensor};
    c10d::AllreduceOptions options;
    options.reduceOp = reduce_op(op);
    wait_for(g, enqueue([&] { return g->group->allreduce(tensors, options); }));
  });
}

char* df_pg_broadcast(DfProcessGroup* g, at::Tensor* tensor, int root) {
  return df_guarded([&] {
    std::vector<at::Tensor> tensors{*tensor};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    wait_for(g, enqueue([&] { return g->group->broadcast(tensors, options); }));
  });
}

// outputs: world_size tensors shaped like input, filled with each rank's input.
char* df_pg_allgather(DfProcessGroup* g, at::Tensor* input, at::Tensor** outputs,
                      int n_outputs) {
  return df_guarded([&] {
    std::vector<at::Tensor> inputs{*input};
    std::vector<std::vector<at::Tensor>> gathered(1);
    for (int i = 0; i < n_outputs; ++i) {
      gathered[0].push_back(*outputs[i]);
    }
    wait_for(g, enqueue([&] { return g->group->allgather(gathered, inputs); }));
  });
}

char* df_pg_barrier(DfProcessGroup* g) {
  return df_guarded([&] { wait_for(g, enqueue([&] { return g->group->barrier(); })); });
}

}  // extern "C"
