// Max pooling over 2×2 windows with stride 2 and no padding, on contiguous NCHW CPU
// tensors of float or bfloat16, with its own autograd node.
//
// libtorch's NCHW max-pooling kernel (cpu_max_pool) is generic: per output it recomputes
// the window's bounds and dilation and runs scalar code. Behind a batch norm of few
// channels (MesoInception4's first two, computed NCHW: df-layers' BatchNorm) it took 10–16 %
// of a training epoch, about four times what libtorch's channels-last kernel takes on the
// same data. This kernel computes the same values and the same argmax — the window is
// scanned row by row, the first element starts, a later one wins when it is greater or NaN
// (cpu_max_pool's rule) — and the backward pass routes each output's gradient to that
// element, as max_pool2d_with_indices_backward does (windows do not overlap). The window
// position is kept in one byte per output instead of libtorch's 64-bit indices. Double
// backward is not supported (the backward pass is not itself differentiable).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <cstdint>

#include "df_guard.hpp"

namespace {

// Planes per parallel task: about 32K input elements each (libtorch's grain size).
int64_t grain(int64_t plane) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, plane)); }

template <typename T>
void forward_kernel(const at::Tensor& x, at::Tensor& y, uint8_t* where) {
  const int64_t planes = x.size(0) * x.size(1);
  const int64_t h = x.size(2), w = x.size(3), ho = y.size(2), wo = y.size(3);
  const T* xs = x.const_data_ptr<T>();
  T* ys = y.mutable_data_ptr<T>();
  at::parallel_for(0, planes, grain(h * w), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const T* xp = xs + p * h * w;
      T* yp = ys + p * ho * wo;
      uint8_t* wp = where == nullptr ? nullptr : where + p * ho * wo;
      for (int64_t i = 0; i < ho; ++i) {
        const T* r0 = xp + 2 * i * w;
        const T* r1 = r0 + w;
        T* yr = yp + i * wo;
        for (int64_t j = 0; j < wo; ++j) {
          const T c[4] = {r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]};
          float m = static_cast<float>(c[0]);
          uint8_t k = 0;
          for (uint8_t q = 1; q < 4; ++q) {
            const float v = static_cast<float>(c[q]);
            if (v > m || std::isnan(v)) {
              m = v;
              k = q;
            }
          }
          yr[j] = c[k];
          if (wp != nullptr) {
            wp[i * wo + j] = k;
          }
        }
      }
    }
  });
}

template <typename T>
void backward_kernel(const at::Tensor& grad, const at::Tensor& where, at::Tensor& out) {
  const int64_t planes = out.size(0) * out.size(1);
  const int64_t h = out.size(2), w = out.size(3), ho = grad.size(2), wo = grad.size(3);
  const T* gs = grad.const_data_ptr<T>();
  const uint8_t* ws = where.const_data_ptr<uint8_t>();
  T* os = out.mutable_data_ptr<T>();
  at::parallel_for(0, planes, grain(h * w), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const T* gp = gs + p * ho * wo;
      const uint8_t* wp = ws + p * ho * wo;
      T* op = os + p * h * w;
      for (int64_t i = 0; i < ho; ++i) {
        for (int64_t j = 0; j < wo; ++j) {
          const uint8_t k = wp[i * wo + j];
          op[(2 * i + (k >> 1)) * w + 2 * j + (k & 1)] = gp[i * wo + j];
        }
      }
    }
  });
}

void check_input(const at::Tensor& x) {
  TORCH_CHECK(x.device().is_cpu(), "max_pool_2x2: the input is on ", x.device(), ", not the CPU");
  TORCH_CHECK(x.dim() == 4, "max_pool_2x2: the input has ", x.dim(), " dimensions, not 4 (NCHW)");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16,
              "max_pool_2x2: dtype ", x.scalar_type(), " (float or bfloat16 only)");
  TORCH_CHECK(x.is_contiguous(), "max_pool_2x2: the input is not contiguous NCHW");
  TORCH_CHECK(x.size(2) >= 2 && x.size(3) >= 2, "max_pool_2x2: the input's ", x.size(2), "x",
              x.size(3), " plane is smaller than the window");
}

// Values, and the window position of each (null: not kept).
at::Tensor pool(const at::Tensor& x, at::Tensor* where) {
  check_input(x);
  at::Tensor y = at::empty({x.size(0), x.size(1), x.size(2) / 2, x.size(3) / 2}, x.options());
  uint8_t* w = nullptr;
  if (where != nullptr) {
    *where = at::empty(y.sizes(), x.options().dtype(at::kByte));
    w = where->mutable_data_ptr<uint8_t>();
  }
  if (x.scalar_type() == at::kFloat) {
    forward_kernel<float>(x, y, w);
  } else {
    forward_kernel<c10::BFloat16>(x, y, w);
  }
  return y;
}

struct MaxPool2x2 : public torch::autograd::Function<MaxPool2x2> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x) {
    at::Tensor where;
    at::Tensor y = pool(x, &where);
    ctx->save_for_backward({where});
    ctx->saved_data["h"] = x.size(2);
    ctx->saved_data["w"] = x.size(3);
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const at::Tensor where = ctx->get_saved_variables()[0];
    const at::Tensor grad = grads[0].contiguous();
    at::Tensor out = at::zeros({grad.size(0), grad.size(1), ctx->saved_data["h"].toInt(),
                                ctx->saved_data["w"].toInt()},
                               grad.options());
    if (grad.scalar_type() == at::kFloat) {
      backward_kernel<float>(grad, where, out);
    } else {
      TORCH_CHECK(grad.scalar_type() == at::kBFloat16, "max_pool_2x2 backward: gradient dtype ",
                  grad.scalar_type());
      backward_kernel<c10::BFloat16>(grad, where, out);
    }
    return {out};
  }
};

}  // namespace

extern "C" {

// *out = max_pool2d(x, 2, 2) of a contiguous NCHW float/bfloat16 CPU tensor (floor: an odd
// last row or column is left out), recorded for autograd when x requires a gradient and
// grad mode is on.
char* df_max_pool_2x2(const at::Tensor* x, at::Tensor** out) {
  return df_guarded([&] {
    at::Tensor y;
    if (x->requires_grad() && at::GradMode::is_enabled()) {
      y = MaxPool2x2::apply(*x);
    } else {
      y = pool(*x, nullptr);
    }
    *out = new at::Tensor(std::move(y));
  });
}

}  // extern "C"
