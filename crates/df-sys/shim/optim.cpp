// The multi-tensor ("foreach") updates of the shim: Adam's step over every parameter in a
// handful of libtorch `_foreach_*` calls, and the loss scaler's unscale-and-check in one
// `_amp_foreach_non_finite_check_and_unscale_`, as torch.optim.Adam (foreach=True, its
// default on CUDA) and torch.amp.GradScaler do. tch 0.24 binds no foreach operator; per
// parameter, each step would cost about ten kernel launches on CUDA.

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cstddef>
#include <vector>

#include "df_guard.hpp"

namespace {

// Handles on the caller's tensors (shared storage: in-place updates reach them).
std::vector<at::Tensor> handles(const at::Tensor* const* tensors, std::size_t n) {
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(*tensors[i]);
  }
  return out;
}

}  // namespace

extern "C" {

// One Adam step over n parameters with their gradients and moments, all on one device
// and of one dtype:
//   p ← p·decay (decoupled weight decay; decay = 1 skips it)
//   m ← m + (1−β₁)(g − m);  v ← β₂v + (1−β₂)g²
//   p ← p + step · m / (√v / denom_div + ε)
// (the caller folds the bias corrections into step and denom_div).
char* df_adam_foreach(const at::Tensor* const* params, const at::Tensor* const* grads,
                      const at::Tensor* const* exp_avgs, const at::Tensor* const* exp_avg_sqs,
                      std::size_t n, double decay, double beta1, double beta2, double eps,
                      double denom_div, double step) {
  return df_guarded([&] {
    at::NoGradGuard no_grad;
    auto p = handles(params, n);
    auto g = handles(grads, n);
    auto m = handles(exp_avgs, n);
    auto v = handles(exp_avg_sqs, n);
    if (decay != 1.0) {
      at::_foreach_mul_(p, decay);
    }
    at::_foreach_lerp_(m, g, 1.0 - beta1);
    at::_foreach_mul_(v, beta2);
    at::_foreach_addcmul_(v, g, g, 1.0 - beta2);
    auto denom = at::_foreach_sqrt(v);
    if (denom_div != 1.0) {
      at::_foreach_div_(denom, denom_div);
    }
    at::_foreach_add_(denom, eps);
    at::_foreach_addcdiv_(p, m, denom, step);
  });
}

// Multiplies n gradients (one device, one dtype) by inv_scale in place and sets found_inf
// (a one-element float tensor on their device) to 1 where any of them holds an inf or NaN.
char* df_amp_unscale_foreach(const at::Tensor* const* grads, std::size_t n,
                             const at::Tensor* found_inf, const at::Tensor* inv_scale) {
  return df_guarded([&] {
    at::NoGradGuard no_grad;
    auto g = handles(grads, n);
    at::Tensor found = *found_inf;
    at::_amp_foreach_non_finite_check_and_unscale_(g, found, *inv_scale);
  });
}

// Zeroes the n gradients (one multi-tensor call), detached from any graph first, as
// tch's per-tensor zero_grad does.
char* df_zero_foreach(const at::Tensor* const* grads, std::size_t n) {
  return df_guarded([&] {
    at::NoGradGuard no_grad;
    auto g = handles(grads, n);
    for (auto& t : g) {
      t.detach_();
    }
    at::_foreach_zero_(g);
  });
}

}  // extern "C"
