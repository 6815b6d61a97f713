// Slide attention on the CPU: one pass per pixel and head over its k x k neighbourhood, straight
// from the (B, H, W, 3, heads, d) output of the qkv projection; nothing of size k^2 x map is
// ever written, and the backward pass recomputes the neighbour keys and the attention weights.
//
// Per pixel and head (w: the neighbour conv as [n][p][c], n the slot, p the kernel position,
// c the channel; b: its bias [n][c]; k_p, v_p: the key/value at kernel position p, zero
// outside the map; r: the (heads, k^2) position bias; q already scaled):
//   K'[n] = b[n] + sum_p w[n][p] * k_p          l[n] = q . K'[n] + r[n] * sum(q)
//   a = softmax(l)                              out = sum_n a[n] b[n] + sum_p (sum_n a[n] w[n][p]) * v_p
// The backward pass scatters into the k^2 neighbours' key/value gradients; rows are processed
// in blocks of >= 2 * (k // 2) rows in two colours, so blocks running at once never write the
// same row.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

template <typename T>
inline void fma_into(T* __restrict y, const T* __restrict w, const T* __restrict x, int64_t d) {
#pragma omp simd
  for (int64_t c = 0; c < d; ++c) y[c] += w[c] * x[c];
}

template <typename T>
inline void axpy(T* __restrict y, T a, const T* __restrict x, int64_t d) {
#pragma omp simd
  for (int64_t c = 0; c < d; ++c) y[c] += a * x[c];
}

template <typename T>
inline T dot(const T* __restrict x, const T* __restrict y, int64_t d) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t c = 0; c < d; ++c) s += x[c] * y[c];
  return s;
}

template <typename T>
inline void softmax(T* l, int64_t n) {
  T m = l[0];
  for (int64_t i = 1; i < n; ++i) m = std::max(m, l[i]);
  T s = 0;
  for (int64_t i = 0; i < n; ++i) s += (l[i] = std::exp(l[i] - m));
  for (int64_t i = 0; i < n; ++i) l[i] /= s;
}

struct Shape {
  int64_t B, H, W, heads, d, ks, k2, pad, C;
  int64_t sB, sH, sW;  // strides of the contiguous (B, H, W, 3, heads, d) qkv tensor
  Shape(const at::Tensor& qkv, int64_t kernel_size) {
    B = qkv.size(0), H = qkv.size(1), W = qkv.size(2), heads = qkv.size(4), d = qkv.size(5);
    ks = kernel_size, k2 = ks * ks, pad = ks / 2, C = heads * d;
    sW = 3 * C, sH = W * sW, sB = H * sH;
  }
  // Offset of pixel (b, y, x) in qkv, or -1 outside the map.
  int64_t at(int64_t b, int64_t y, int64_t x) const {
    return (y < 0 || y >= H || x < 0 || x >= W) ? -1 : b * sB + y * sH + x * sW;
  }
};

// Head width: a compile-time D for the common widths (the channel loops unroll), else s.d.
template <int D>
inline int64_t width(const Shape& s) { return D > 0 ? D : s.d; }

// Keys K'[n] of one pixel and head into `keys` (k2 x d), softmax weights into `l`.
template <typename T, int D>
inline void attention_weights(const Shape& s, const T* q, const T* const* kn, const T* wt,
                              const T* bt, const T* rel_h, T* keys, T* l) {
  const int64_t d = width<D>(s), k2 = s.k2;
  T qsum = 0;
  for (int64_t c = 0; c < d; ++c) qsum += q[c];
  for (int64_t n = 0; n < k2; ++n) {
    T* key = keys + n * d;
    std::copy(bt + n * d, bt + (n + 1) * d, key);
    for (int64_t p = 0; p < k2; ++p) fma_into(key, wt + (n * k2 + p) * d, kn[p], d);
    l[n] = dot(q, key, d) + rel_h[n] * qsum;
  }
  softmax(l, k2);
}

template <typename T, int D>
void forward_impl(const Shape& s, const T* qkv, const T* wt, const T* bt, const T* rel, T scale,
                  T* out) {
  const int64_t d = width<D>(s), k2 = s.k2, C = s.C;
  at::parallel_for(0, s.B * s.H, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> zeros(d, 0), q(d), keys(k2 * d), a(k2), mix(d);
    std::vector<const T*> kn(k2), vn(k2);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / s.H, y = row % s.H;
      for (int64_t x = 0; x < s.W; ++x) {
        for (int64_t h = 0; h < s.heads; ++h) {
          const T* qp = qkv + s.at(b, y, x) + h * d;
          for (int64_t c = 0; c < d; ++c) q[c] = qp[c] * scale;
          for (int64_t p = 0; p < k2; ++p) {
            const int64_t o = s.at(b, y + p / s.ks - s.pad, x + p % s.ks - s.pad);
            kn[p] = o < 0 ? zeros.data() : qkv + o + C + h * d;
            vn[p] = o < 0 ? zeros.data() : qkv + o + 2 * C + h * d;
          }
          attention_weights<T, D>(s, q.data(), kn.data(), wt, bt, rel + h * k2, keys.data(),
                                  a.data());
          T* o = out + ((b * s.H + y) * s.W + x) * C + h * d;
          std::fill(o, o + d, T(0));
          for (int64_t n = 0; n < k2; ++n) axpy(o, a[n], bt + n * d, d);
          for (int64_t p = 0; p < k2; ++p) {
            std::fill(mix.begin(), mix.end(), T(0));
            for (int64_t n = 0; n < k2; ++n) axpy(mix.data(), a[n], wt + (n * k2 + p) * d, d);
            fma_into(o, mix.data(), vn[p], d);
          }
        }
      }
    }
  });
}

template <typename T, int D>
void backward_impl(const Shape& s, const T* grad, const T* qkv, const T* wt, const T* bt,
                   const T* rel, T scale, T* gqkv, T* gwt, T* gbt, T* grel) {
  const int64_t d = width<D>(s), k2 = s.k2, C = s.C, heads = s.heads;
  const int64_t rows = std::max<int64_t>(2 * s.pad, 1), blocks = (s.H + rows - 1) / rows;
  const int64_t threads = at::get_num_threads();
  const int64_t nw = k2 * k2 * d, nb = k2 * d, nr = heads * k2;
  std::vector<T> acc(threads * (nw + nb + nr), T(0));  // per-thread parameter gradients
  for (int64_t colour = 0; colour < 2; ++colour) {
    const int64_t per_b = (blocks - colour + 1) / 2;  // blocks of this colour per image
    at::parallel_for(0, s.B * heads * per_b, 1, [&](int64_t begin, int64_t end) {
      T* gw = acc.data() + at::get_thread_num() * (nw + nb + nr);
      T* gb = gw + nw;
      T* gr = gb + nb;
      std::vector<T> zeros(d, 0), sink(d), q(d), keys(k2 * d), a(k2), ga(k2), gl(k2),
          gvp(k2 * d), gkp(k2 * d), mix(d), gq(d);
      std::vector<const T*> kn(k2), vn(k2);
      std::vector<T*> gkn(k2), gvn(k2);
      for (int64_t item = begin; item < end; ++item) {
        const int64_t b = item / (heads * per_b), h = item / per_b % heads;
        const int64_t y0 = (2 * (item % per_b) + colour) * rows;
        for (int64_t y = y0; y < std::min(y0 + rows, s.H); ++y) {
          for (int64_t x = 0; x < s.W; ++x) {
            const int64_t self = s.at(b, y, x) + h * d;
            const T* go = grad + ((b * s.H + y) * s.W + x) * C + h * d;
            for (int64_t c = 0; c < d; ++c) q[c] = qkv[self + c] * scale;
            for (int64_t p = 0; p < k2; ++p) {
              const int64_t o = s.at(b, y + p / s.ks - s.pad, x + p % s.ks - s.pad);
              kn[p] = o < 0 ? zeros.data() : qkv + o + C + h * d;
              vn[p] = o < 0 ? zeros.data() : qkv + o + 2 * C + h * d;
              gkn[p] = o < 0 ? sink.data() : gqkv + o + C + h * d;
              gvn[p] = o < 0 ? sink.data() : gqkv + o + 2 * C + h * d;
            }
            const T* rel_h = rel + h * k2;
            attention_weights<T, D>(s, q.data(), kn.data(), wt, bt, rel_h, keys.data(),
                                    a.data());
            T qsum = 0;
            for (int64_t c = 0; c < d; ++c) qsum += q[c];
            for (int64_t p = 0; p < k2; ++p) {
              for (int64_t c = 0; c < d; ++c) {
                gvp[p * d + c] = go[c] * vn[p][c];
                gkp[p * d + c] = q[c] * kn[p][c];
              }
            }
            // d out / d a[n] = V'[n] . go, V'[n] = b[n] + sum_p w[n][p] * v_p; softmax backward.
            T weighted = 0;
            for (int64_t n = 0; n < k2; ++n) {
              T g = dot(go, bt + n * d, d);
              for (int64_t p = 0; p < k2; ++p) g += dot(wt + (n * k2 + p) * d, &gvp[p * d], d);
              ga[n] = g;
              weighted += a[n] * g;
            }
            std::fill(gq.begin(), gq.end(), T(0));
            for (int64_t n = 0; n < k2; ++n) {
              gl[n] = a[n] * (ga[n] - weighted);
              axpy(gq.data(), gl[n], &keys[n * d], d);
              gr[h * k2 + n] += gl[n] * qsum;
            }
            T glsum_rel = 0;
            for (int64_t n = 0; n < k2; ++n) glsum_rel += gl[n] * rel_h[n];
            for (int64_t c = 0; c < d; ++c) gqkv[self + c] = (gq[c] + glsum_rel) * scale;
            for (int64_t n = 0; n < k2; ++n) {
              axpy(gb + n * d, a[n], go, d);
              axpy(gb + n * d, gl[n], q.data(), d);
              for (int64_t p = 0; p < k2; ++p) {
                T* g = gw + (n * k2 + p) * d;
                axpy(g, a[n], &gvp[p * d], d);
                axpy(g, gl[n], &gkp[p * d], d);
              }
            }
            for (int64_t p = 0; p < k2; ++p) {
              std::fill(mix.begin(), mix.end(), T(0));
              for (int64_t n = 0; n < k2; ++n) axpy(mix.data(), gl[n], wt + (n * k2 + p) * d, d);
              for (int64_t c = 0; c < d; ++c) gkn[p][c] += q[c] * mix[c];
              std::fill(mix.begin(), mix.end(), T(0));
              for (int64_t n = 0; n < k2; ++n) axpy(mix.data(), a[n], wt + (n * k2 + p) * d, d);
              fma_into(gvn[p], mix.data(), go, d);
            }
          }
        }
      }
    });
  }
  for (int64_t t = 0; t < threads; ++t) {
    const T* src = acc.data() + t * (nw + nb + nr);
    for (int64_t i = 0; i < nw; ++i) gwt[i] += src[i];
    for (int64_t i = 0; i < nb; ++i) gbt[i] += src[nw + i];
    for (int64_t i = 0; i < nr; ++i) grel[i] += src[nw + nb + i];
  }
}

void check(const at::Tensor& qkv, const at::Tensor& weight, const at::Tensor& bias,
           const at::Tensor& rel, int64_t ks) {
  TORCH_CHECK(qkv.dim() == 6 && qkv.size(3) == 3, "qkv must be (B, H, W, 3, heads, d)");
  TORCH_CHECK(qkv.device().is_cpu(), "the slide attention kernel runs on the CPU");
  const int64_t d = qkv.size(5), k2 = ks * ks;
  TORCH_CHECK(weight.numel() == d * k2 * k2 && bias.numel() == d * k2,
              "weight must be (d*k^2, 1, k, k) and bias (d*k^2,)");
  TORCH_CHECK(rel.numel() == qkv.size(4) * k2, "rel_pos_bias must be (heads, k^2)");
  TORCH_CHECK(weight.dtype() == qkv.dtype() && bias.dtype() == qkv.dtype() &&
                  rel.dtype() == qkv.dtype(), "all inputs must have the same dtype");
}

// [c][n][p] conv layout -> [n][p][c], contiguous over channels.
at::Tensor weight_npc(const at::Tensor& weight, int64_t d, int64_t k2) {
  return weight.reshape({d, k2, k2}).permute({1, 2, 0}).contiguous();
}

}  // namespace

at::Tensor slide_forward(const at::Tensor& qkv_in, const at::Tensor& weight,
                         const at::Tensor& bias, const at::Tensor& rel, int64_t ks,
                         double scale) {
  check(qkv_in, weight, bias, rel, ks);
  const at::Tensor qkv = qkv_in.contiguous();
  const Shape s(qkv, ks);
  at::Tensor out = at::empty({s.B, s.H, s.W, s.C}, qkv.options());
  const at::Tensor wt = weight_npc(weight, s.d, s.k2);
  const at::Tensor bt = bias.reshape({s.d, s.k2}).t().contiguous();
  const at::Tensor r = rel.contiguous();
  AT_DISPATCH_FLOATING_TYPES(qkv.scalar_type(), "slide_forward", [&] {
    auto run = [&](auto impl) {
      impl(s, qkv.data_ptr<scalar_t>(), wt.data_ptr<scalar_t>(), bt.data_ptr<scalar_t>(),
           r.data_ptr<scalar_t>(), static_cast<scalar_t>(scale), out.data_ptr<scalar_t>());
    };
    if (s.d == 32) run(forward_impl<scalar_t, 32>);
    else if (s.d == 64) run(forward_impl<scalar_t, 64>);
    else run(forward_impl<scalar_t, 0>);
  });
  return out;
}

std::vector<at::Tensor> slide_backward(const at::Tensor& grad_in, const at::Tensor& qkv_in,
                                       const at::Tensor& weight, const at::Tensor& bias,
                                       const at::Tensor& rel, int64_t ks, double scale) {
  check(qkv_in, weight, bias, rel, ks);
  const at::Tensor qkv = qkv_in.contiguous(), grad = grad_in.contiguous();
  const Shape s(qkv, ks);
  at::Tensor gqkv = at::zeros_like(qkv);
  at::Tensor gwt = at::zeros({s.k2, s.k2, s.d}, qkv.options());
  at::Tensor gbt = at::zeros({s.k2, s.d}, qkv.options());
  at::Tensor grel = at::zeros({s.heads, s.k2}, qkv.options());
  const at::Tensor wt = weight_npc(weight, s.d, s.k2);
  const at::Tensor bt = bias.reshape({s.d, s.k2}).t().contiguous();
  const at::Tensor r = rel.contiguous();
  AT_DISPATCH_FLOATING_TYPES(qkv.scalar_type(), "slide_backward", [&] {
    auto run = [&](auto impl) {
      impl(s, grad.data_ptr<scalar_t>(), qkv.data_ptr<scalar_t>(), wt.data_ptr<scalar_t>(),
           bt.data_ptr<scalar_t>(), r.data_ptr<scalar_t>(), static_cast<scalar_t>(scale),
           gqkv.data_ptr<scalar_t>(), gwt.data_ptr<scalar_t>(), gbt.data_ptr<scalar_t>(),
           grel.data_ptr<scalar_t>());
    };
    if (s.d == 32) run(backward_impl<scalar_t, 32>);
    else if (s.d == 64) run(backward_impl<scalar_t, 64>);
    else run(backward_impl<scalar_t, 0>);
  });
  at::Tensor gweight = gwt.permute({2, 0, 1}).reshape(weight.sizes()).contiguous();
  at::Tensor gbias = gbt.t().reshape(bias.sizes()).contiguous();
  return {gqkv, gweight, gbias, grel.reshape(rel.sizes())};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &slide_forward, "slide attention forward (CPU)");
  m.def("backward", &slide_backward, "slide attention backward (CPU)");
}
