/**
 * Copyright (c) 2017-present, Facebook, Inc.
 * All rights reserved.
 *
 * This source code is licensed under the BSD-style license found in the
 * LICENSE file in the root directory of this source tree.
 */

// NOT a verbatim gloo file. Hand-written by the df-sys vendoring step in
// place of the CMake-generated gloo/config.h (template: gloo/config.h.in at
// pytorch/gloo 3135b0b41b67dde590eef0938a0bf3d6238df5f7), with the values
// PyTorch 2.11.0's Linux x86_64 wheel build (cmake/Dependencies.cmake,
// add_subdirectory(third_party/gloo)) produces for the cu130 wheel in
// .libtorch. See ../README.md for the evidence behind each value.
// None of these macros changes the layout of any class declared in the
// vendored headers.

#pragma once

#define GLOO_VERSION_MAJOR 0
#define GLOO_VERSION_MINOR 5
#define GLOO_VERSION_PATCH 0

static_assert(
    GLOO_VERSION_MINOR < 100,
    "Programming error: you set a minor version that is too big.");
static_assert(
    GLOO_VERSION_PATCH < 100,
    "Programming error: you set a patch version that is too big.");

#define GLOO_VERSION                                         \
  (GLOO_VERSION_MAJOR * 10000 + GLOO_VERSION_MINOR * 100 +   \
   GLOO_VERSION_PATCH)

// 1 for the CUDA wheels (this cu130 wheel: libtorch_cuda.so carries
// gloo::CudaAllreduceRingChunked etc.); the CPU-only wheel has 0. Only
// gloo/cuda*.h (not vendored) look at it.
#define GLOO_USE_CUDA 1
// PyTorch forces USE_NCCL/USE_RCCL OFF around add_subdirectory(gloo).
#define GLOO_USE_NCCL 0
#define GLOO_USE_ROCM 0
#define GLOO_USE_RCCL 0
#define GLOO_USE_REDIS 0
#define GLOO_USE_IBVERBS 0
#define GLOO_USE_MPI 0
// USE_AVX is not a PyTorch CMake variable, so it configures to 0.
#define GLOO_USE_AVX 0
// No gloo::transport::uv symbols in libtorch_cpu.so (Linux builds use tcp).
#define GLOO_USE_LIBUV 0

#define GLOO_HAVE_TRANSPORT_TCP 1
// gloo::transport::tcp::tls::* and the _glootls:: dlopen shim are present
// (PyTorch sets USE_TCP_OPENSSL_LOAD ON on Linux).
#define GLOO_HAVE_TRANSPORT_TCP_TLS 1
#define GLOO_HAVE_TRANSPORT_IBVERBS 0
#define GLOO_HAVE_TRANSPORT_UV 0

// PyTorch sets GLOO_USE_TORCH_DTYPES 1 (only gloo/cuda_private.h uses it).
#define GLOO_USE_TORCH_DTYPES 1
