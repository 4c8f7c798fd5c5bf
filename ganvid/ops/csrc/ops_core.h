// Per-element math of ganvid's ops, shared by the CUDA kernels (*.cu) and the CPU emulation in
// ops.cpp (used by the tests to check every index formula on machines without a GPU).
// No torch and no CUDA headers here: plain C++ that nvcc and g++ both compile.
#pragma once

#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define GV_HD __host__ __device__ __forceinline__
#else
#define GV_HD inline
#endif

namespace gv {

// Activation codes; must match ganvid/ops/bias_act.py (Activation.cuda_idx).
enum Act : int {
  kLinear = 1,
  kRelu = 2,
  kLrelu = 3,
  kTanh = 4,
  kSigmoid = 5,
  kElu = 6,
  kSelu = 7,
  kSoftplus = 8,
  kSwish = 9,
};

struct BiasActParams {
  int64_t n;     // number of elements of x
  int64_t step;  // product of x's sizes after `dim` (elements between consecutive channels)
  int channels;  // x.shape[dim]; the bias index of element i is (i / step) % channels
  int act;       // an Act code
  float alpha;   // slope of lrelu (the only activation that uses it)
  float gain;    // multiplies act(x + b)
  float clamp;   // result clamped to [-clamp, clamp]; negative = no clamp
};

GV_HD float sigmoid(float z) { return 1.0f / (1.0f + expf(-z)); }

constexpr float kSeluScale = 1.0507009873554804934f;
constexpr float kSeluAlpha = 1.6732632423543772848f;

GV_HD float act_forward(int act, float z, float alpha) {
  switch (act) {
    case kRelu: return z > 0.0f ? z : 0.0f;
    case kLrelu: return z > 0.0f ? z : z * alpha;
    case kTanh: return tanhf(z);
    case kSigmoid: return sigmoid(z);
    case kElu: return z > 0.0f ? z : expm1f(z);
    case kSelu: return z > 0.0f ? kSeluScale * z : kSeluScale * kSeluAlpha * expm1f(z);
    case kSoftplus: return z > 20.0f ? z : log1pf(expf(z));  // torch's default threshold
    case kSwish: return z * sigmoid(z);
    default: return z;
  }
}

// d act(z) / dz, with the same sub-gradient choices as torch's autograd at the kinks.
GV_HD float act_derivative(int act, float z, float alpha) {
  switch (act) {
    case kRelu: return z > 0.0f ? 1.0f : 0.0f;
    case kLrelu: return z > 0.0f ? 1.0f : alpha;
    case kTanh: {
      float t = tanhf(z);
      return 1.0f - t * t;
    }
    case kSigmoid: {
      float s = sigmoid(z);
      return s * (1.0f - s);
    }
    case kElu: return z > 0.0f ? 1.0f : expf(z);
    case kSelu: return z > 0.0f ? kSeluScale : kSeluScale * kSeluAlpha * expf(z);
    case kSoftplus: return z > 20.0f ? 1.0f : sigmoid(z);
    case kSwish: {
      float s = sigmoid(z);
      return s * (1.0f + z * (1.0f - s));
    }
    default: return 1.0f;
  }
}

GV_HD float bias_at(const BiasActParams& p, const float* bias, int64_t i) {
  return bias ? bias[(i / p.step) % p.channels] : 0.0f;
}

// y = clamp(act(x + b) * gain)
GV_HD float bias_act_value(const BiasActParams& p, float x, float b) {
  float y = act_forward(p.act, x + b, p.alpha) * p.gain;
  if (p.clamp >= 0.0f) y = fminf(fmaxf(y, -p.clamp), p.clamp);
  return y;
}

// dL/dx given dL/dy; the clamp passes the gradient where -clamp <= y <= clamp (as torch does).
GV_HD float bias_act_grad_value(const BiasActParams& p, float dy, float x, float b) {
  float z = x + b;
  if (p.clamp >= 0.0f && fabsf(act_forward(p.act, z, p.alpha) * p.gain) > p.clamp) return 0.0f;
  return dy * p.gain * act_derivative(p.act, z, p.alpha);
}

// ------------------------------------------------------------------------------------------
// One upfirdn pass: y[m] = sum_t p[m * down + t] * w[t] per axis, where p is x zero-stuffed by
// `up` (up - 1 zeros after each sample) and shifted by pad0 (negative = crop). `w` is stored in
// cross-correlation order [taps_y, taps_x] (the caller flips for a true convolution and folds
// the gain in). Input sample i meets tap t = i * up + pad0 - m * down, for 0 <= t < taps.

enum Epilogue : int {
  kNone = 0,
  kLreluForward = 1,   // y = clamp(lrelu(acc, slope) * gain); mask code 0 clamped, 1 pos, 2 neg
  kLreluBackward = 2,  // y = acc * (0 | gain | gain * slope) according to the saved mask code
  kLreluForwardNoMask = 3,  // as kLreluForward without the mask (no backward will follow)
};

struct PassParams {
  int64_t planes;  // N * C
  int channels;    // C (bias index = plane % C)
  int in_h, in_w, out_h, out_w;
  int up_x, up_y, down_x, down_y;
  int pad_x0, pad_y0;
  int taps_x, taps_y;
  int epilogue;
  float gain, slope, clamp;  // epilogue parameters; clamp < 0 = none
};

GV_HD int ceil_div(int a, int b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

// First input sample (>= 0) that reaches output m along one axis, and its tap.
GV_HD void first_tap(int m, int up, int down, int pad0, int* i0, int* t0) {
  int i = ceil_div(m * down - pad0, up);
  if (i < 0) i = 0;
  *i0 = i;
  *t0 = i * up + pad0 - m * down;
}

// Weighted sum for output element `idx` (flat NCHW index). `load(k)` returns input element k as
// float; `bias` (nullable) is added to every real input sample (not to the zero padding).
template <typename Load>
GV_HD float pass_sum(const PassParams& p, Load load, const float* w, const float* bias,
                     int64_t idx) {
  int ox = (int)(idx % p.out_w);
  int64_t rest = idx / p.out_w;
  int oy = (int)(rest % p.out_h);
  int64_t plane = rest / p.out_h;
  float b = bias ? bias[plane % p.channels] : 0.0f;
  int64_t base = plane * (int64_t)p.in_h * p.in_w;
  int iy0, ty0, ix0, tx0;
  first_tap(oy, p.up_y, p.down_y, p.pad_y0, &iy0, &ty0);
  first_tap(ox, p.up_x, p.down_x, p.pad_x0, &ix0, &tx0);
  float acc = 0.0f;
  for (int iy = iy0, ty = ty0; iy < p.in_h && ty < p.taps_y; ++iy, ty += p.up_y) {
    const float* w_row = w + (int64_t)ty * p.taps_x;
    int64_t row = base + (int64_t)iy * p.in_w;
    for (int ix = ix0, tx = tx0; ix < p.in_w && tx < p.taps_x; ++ix, tx += p.up_x) {
      acc += (load(row + ix) + b) * w_row[tx];
    }
  }
  return acc;
}

// Applies the epilogue to acc; reads/writes the mask code of element idx when needed.
GV_HD float pass_epilogue(const PassParams& p, float acc, const uint8_t* mask_in,
                          uint8_t* mask_out, int64_t idx) {
  if (p.epilogue == kLreluForward || p.epilogue == kLreluForwardNoMask) {
    float y = (acc > 0.0f ? acc : acc * p.slope) * p.gain;
    uint8_t code = acc > 0.0f ? 1 : 2;
    if (p.clamp >= 0.0f && fabsf(y) > p.clamp) {
      y = y > 0.0f ? p.clamp : -p.clamp;
      code = 0;
    }
    if (mask_out) mask_out[idx] = code;
    return y;
  }
  if (p.epilogue == kLreluBackward) {
    uint8_t code = mask_in[idx];
    return code == 0 ? 0.0f : acc * (code == 1 ? p.gain : p.gain * p.slope);
  }
  return acc;
}

}  // namespace gv
