// The NCCL part of the shim (the `nccl` feature): libtorch's ProcessGroupNCCL on the same
// rendezvous as Gloo's, for CUDA tensors. Compiled against the wheel's own nccl.h (its
// Options have NCCL-version-dependent fields) and the CUDA headers of the PyPI packages
// nvidia-cuda-crt and nvidia-cuda-cccl (`scripts/setup.sh --nccl`). The collectives are
// c10d.cpp's, through the Backend interface.

#include "df_group.hpp"

#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

#include <c10/cuda/CUDAFunctions.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

extern "C" {

// device: the CUDA device this rank uses (its LOCAL_RANK, as torchrun's convention).
char* df_pg_nccl_new(const char* master_addr, int port, int rank, int world_size,
                     int64_t timeout_ms, int device, DfProcessGroup** out) {
  *out = nullptr;
  return df_guarded([&] {
    auto timeout = std::chrono::milliseconds(timeout_ms);
    c10::cuda::set_device(static_cast<c10::DeviceIndex>(device));
    auto store = df_rendezvous(master_addr, port, rank, world_size, timeout);
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = timeout;
    auto group = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world_size, options);
    *out = new DfProcessGroup{store, group, timeout};
  });
}

}  // extern "C"
