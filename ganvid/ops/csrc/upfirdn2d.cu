// One upfirdn pass (see ops_core.h): one thread per output element, grid-stride loop. upfirdn2d
// runs one pass (2-D filter) or two (separable: along x, then y); filtered_lrelu chains passes
// with the bias folded into the first and the leaky ReLU / clamp / sign mask into the epilogue.
#include "common.cuh"

namespace gv {

template <typename T>
__global__ void upfirdn_pass_kernel(const T* __restrict__ x, const float* __restrict__ w,
                                    const float* __restrict__ bias,
                                    const uint8_t* __restrict__ mask_in,
                                    uint8_t* __restrict__ mask_out, T* __restrict__ y,
                                    PassParams p) {
  const int64_t n = p.planes * p.out_h * p.out_w;
  const LoadAs<T> load{x};
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    float acc = pass_sum(p, load, w, bias, i);
    y[i] = from_float<T>(pass_epilogue(p, acc, mask_in, mask_out, i));
  }
}

template <typename T>
int upfirdn_pass_t(const void* x, const float* w, const float* bias, const uint8_t* mask_in,
                   uint8_t* mask_out, void* y, const PassParams& p, void* stream) {
  const int64_t n = p.planes * p.out_h * p.out_w;
  upfirdn_pass_kernel<T><<<blocks_for(n), kThreads, 0, (cudaStream_t)stream>>>(
      (const T*)x, w, bias, mask_in, mask_out, (T*)y, p);
  return (int)cudaGetLastError();
}

int launch_upfirdn_pass(int dtype, const void* x, const float* w, const float* bias,
                        const uint8_t* mask_in, uint8_t* mask_out, void* y,
                        const PassParams& p, void* stream) {
  GV_DISPATCH(dtype, upfirdn_pass_t, x, w, bias, mask_in, mask_out, y, p, stream);
}

}  // namespace gv
