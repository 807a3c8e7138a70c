// Max pooling over 2×2 windows with stride 2 and no padding, on contiguous NCHW CPU
// tensors of float or bfloat16, with its own autograd node.
//
// libtorch's NCHW max-pooling kernel (cpu_max_pool) is generic: per output it recomputes
// the window's bounds and dilation and runs scalar code. Behind a batch norm of few
// channels (MesoInception4's first two, computed NCHW: df-layers' BatchNorm) it took 10–16 %
// of a training epoch (perf; docs/runs/epoch-amd-epyc-890e996.md, "The training epoch"). This kernel computes the same values and the same argmax — the window is
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
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "df_guard.hpp"

namespace {

// Planes per parallel task: about 32K input elements each (libtorch's grain size).
int64_t grain(int64_t plane) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, plane)); }

// One output row from input rows r0 and r1, outputs [from, wo): the rule above, without
// branches (comparisons of real data are unpredictable); `v != v` is isnan.
template <typename T>
void row_scalar(const T* r0, const T* r1, T* yr, uint8_t* wr, int64_t from, int64_t wo) {
  for (int64_t j = from; j < wo; ++j) {
    const float a = static_cast<float>(r0[2 * j]);
    const float b = static_cast<float>(r0[2 * j + 1]);
    const float c = static_cast<float>(r1[2 * j]);
    const float d = static_cast<float>(r1[2 * j + 1]);
    const bool tb = (b > a) | (b != b);
    const float m1 = tb ? b : a;
    const uint8_t k1 = tb ? 1 : 0;
    const bool tc = (c > m1) | (c != c);
    const float m2 = tc ? c : m1;
    const uint8_t k2 = tc ? 2 : k1;
    const bool td = (d > m2) | (d != d);
    const uint8_t k3 = td ? 3 : k2;
    const T in[4] = {r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]};
    yr[j] = in[k3];  // the element itself (a NaN keeps its bits)
    if (wr != nullptr) {
      wr[j] = k3;
    }
  }
}

#if defined(__SSE2__)
// Four outputs at a time (SSE2, part of every x86-64): the pairs of each row
// deinterleaved, the window's four candidates compared lane-wise with the same rule.
// Returns the first output left for row_scalar.
struct Four {
  __m128 a, b, c, d;  // the window's elements in scan order, four windows
};

inline __m128 select(__m128 take, __m128 yes, __m128 no) {
  return _mm_or_ps(_mm_and_ps(take, yes), _mm_andnot_ps(take, no));
}

inline void decide(const Four& f, __m128* value, __m128i* where) {
  const __m128 tb = _mm_or_ps(_mm_cmpgt_ps(f.b, f.a), _mm_cmpunord_ps(f.b, f.b));
  const __m128 m1 = select(tb, f.b, f.a);
  const __m128 tc = _mm_or_ps(_mm_cmpgt_ps(f.c, m1), _mm_cmpunord_ps(f.c, f.c));
  const __m128 m2 = select(tc, f.c, m1);
  const __m128 td = _mm_or_ps(_mm_cmpgt_ps(f.d, m2), _mm_cmpunord_ps(f.d, f.d));
  *value = select(td, f.d, m2);
  const __m128i one = _mm_set1_epi32(1), two = _mm_set1_epi32(2), three = _mm_set1_epi32(3);
  const __m128i k1 = _mm_and_si128(_mm_castps_si128(tb), one);
  const __m128i k2 = _mm_or_si128(_mm_and_si128(_mm_castps_si128(tc), two),
                                  _mm_andnot_si128(_mm_castps_si128(tc), k1));
  *where = _mm_or_si128(_mm_and_si128(_mm_castps_si128(td), three),
                        _mm_andnot_si128(_mm_castps_si128(td), k2));
}

inline void store_where(uint8_t* wr, __m128i where) {
  const __m128i bytes = _mm_packus_epi16(_mm_packs_epi32(where, where), _mm_setzero_si128());
  const int32_t four = _mm_cvtsi128_si32(bytes);
  std::memcpy(wr, &four, 4);
}

int64_t row_sse2(const float* r0, const float* r1, float* yr, uint8_t* wr, int64_t wo) {
  int64_t j = 0;
  for (; j + 4 <= wo; j += 4) {
    const __m128 p0 = _mm_loadu_ps(r0 + 2 * j), p1 = _mm_loadu_ps(r0 + 2 * j + 4);
    const __m128 q0 = _mm_loadu_ps(r1 + 2 * j), q1 = _mm_loadu_ps(r1 + 2 * j + 4);
    const Four f{_mm_shuffle_ps(p0, p1, _MM_SHUFFLE(2, 0, 2, 0)),
                 _mm_shuffle_ps(p0, p1, _MM_SHUFFLE(3, 1, 3, 1)),
                 _mm_shuffle_ps(q0, q1, _MM_SHUFFLE(2, 0, 2, 0)),
                 _mm_shuffle_ps(q0, q1, _MM_SHUFFLE(3, 1, 3, 1))};
    __m128 value;
    __m128i where;
    decide(f, &value, &where);
    _mm_storeu_ps(yr + j, value);
    if (wr != nullptr) {
      store_where(wr + j, where);
    }
  }
  return j;
}

// bfloat16 is the upper half of a float: widened by a 16-bit shift, narrowed back exactly
// (every output is one of the inputs, its lower half zero).
inline __m128 widen(__m128i halves) {
  return _mm_castsi128_ps(_mm_slli_epi32(halves, 16));
}

int64_t row_sse2(const c10::BFloat16* r0, const c10::BFloat16* r1, c10::BFloat16* yr,
                 uint8_t* wr, int64_t wo) {
  const __m128i low = _mm_set1_epi32(0xffff);
  int64_t j = 0;
  for (; j + 4 <= wo; j += 4) {
    // Eight bf16 of each row: as 32-bit lanes, even elements in the low half.
    const __m128i p = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r0 + 2 * j));
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r1 + 2 * j));
    const Four f{widen(_mm_and_si128(p, low)), widen(_mm_srli_epi32(p, 16)),
                 widen(_mm_and_si128(q, low)), widen(_mm_srli_epi32(q, 16))};
    __m128 value;
    __m128i where;
    decide(f, &value, &where);
    // The upper halves, sign-extended, pack to 16 bits exactly.
    const __m128i bits = _mm_srai_epi32(_mm_castps_si128(value), 16);
    const __m128i packed = _mm_packs_epi32(bits, bits);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(yr + j), packed);
    if (wr != nullptr) {
      store_where(wr + j, where);
    }
  }
  return j;
}
#endif

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
        uint8_t* wr = wp == nullptr ? nullptr : wp + i * wo;
        int64_t j = 0;
#if defined(__SSE2__)
        j = row_sse2(r0, r1, yr, wr, wo);
#endif
        row_scalar(r0, r1, yr, wr, j, wo);
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
