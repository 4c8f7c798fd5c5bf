// Element conversions and the launch shape shared by the .cu files (no torch headers here).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "launch.h"

namespace gv {

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

template <typename T>
struct LoadAs {
  const T* __restrict__ x;
  __device__ __forceinline__ float operator()(int64_t k) const { return to_float(x[k]); }
};

template <typename T>
struct StoreAs {
  T* __restrict__ y;
  __device__ __forceinline__ void operator()(int64_t k, float v) const { y[k] = from_float<T>(v); }
};

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n elements (enough to fill any current GPU).
inline unsigned int blocks_for(int64_t n) {
  int64_t blocks = (n + kThreads - 1) / kThreads;
  const int64_t cap = 65536;
  return (unsigned int)(blocks < 1 ? 1 : (blocks > cap ? cap : blocks));
}

// Expands to a switch that calls FN<T>(ARGS...) for the element type code `dtype`.
#define GV_DISPATCH(dtype, FN, ...)                                  \
  switch (dtype) {                                                   \
    case kFloat32: return FN<float>(__VA_ARGS__);                    \
    case kFloat16: return FN<__half>(__VA_ARGS__);                   \
    case kBFloat16: return FN<__nv_bfloat16>(__VA_ARGS__);           \
    default: return (int)cudaErrorInvalidValue;                      \
  }

}  // namespace gv
