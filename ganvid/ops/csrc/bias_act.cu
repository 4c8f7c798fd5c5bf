// bias_act forward and backward: one thread per element, grid-stride loop.
#include "common.cuh"

namespace gv {

template <typename T>
__global__ void bias_act_kernel(const T* __restrict__ x, const float* __restrict__ bias,
                                T* __restrict__ y, BiasActParams p) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < p.n;
       i += (int64_t)gridDim.x * blockDim.x) {
    y[i] = from_float<T>(bias_act_value(p, to_float(x[i]), bias_at(p, bias, i)));
  }
}

template <typename T>
__global__ void bias_act_grad_kernel(const T* __restrict__ dy, const T* __restrict__ x,
                                     const float* __restrict__ bias, T* __restrict__ dx,
                                     BiasActParams p) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < p.n;
       i += (int64_t)gridDim.x * blockDim.x) {
    float g = bias_act_grad_value(p, to_float(dy[i]), to_float(x[i]), bias_at(p, bias, i));
    dx[i] = from_float<T>(g);
  }
}

template <typename T>
int bias_act_t(const void* x, const float* bias, void* y, const BiasActParams& p,
               void* stream) {
  bias_act_kernel<T><<<blocks_for(p.n), kThreads, 0, (cudaStream_t)stream>>>((const T*)x, bias,
                                                                              (T*)y, p);
  return (int)cudaGetLastError();
}

template <typename T>
int bias_act_grad_t(const void* dy, const void* x, const float* bias, void* dx,
                    const BiasActParams& p, void* stream) {
  bias_act_grad_kernel<T><<<blocks_for(p.n), kThreads, 0, (cudaStream_t)stream>>>(
      (const T*)dy, (const T*)x, bias, (T*)dx, p);
  return (int)cudaGetLastError();
}

int launch_bias_act(int dtype, const void* x, const float* bias, void* y,
                    const BiasActParams& p, void* stream) {
  GV_DISPATCH(dtype, bias_act_t, x, bias, y, p, stream);
}

int launch_bias_act_grad(int dtype, const void* dy, const void* x, const float* bias, void* dx,
                         const BiasActParams& p, void* stream) {
  GV_DISPATCH(dtype, bias_act_grad_t, dy, x, bias, dx, p, stream);
}

const char* error_string(int code) { return cudaGetErrorString((cudaError_t)code); }

}  // namespace gv
