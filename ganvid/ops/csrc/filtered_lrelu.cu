// Fused filtered_lrelu forward (see flrelu_core.h): one block per output tile and plane, the
// upsampled, activated tmp tile lives in shared memory only.
#include "common.cuh"

namespace gv {

template <typename T>
__global__ void filtered_lrelu_kernel(const T* __restrict__ x, const float* __restrict__ fu_x,
                                      const float* __restrict__ fu_y,
                                      const float* __restrict__ fd_x,
                                      const float* __restrict__ fd,
                                      const float* __restrict__ bias, uint8_t* __restrict__ mask,
                                      T* __restrict__ y, FusedParams p) {
  extern __shared__ float smem[];
  float* region1 = smem;
  float* region2 = smem + fused_region1_floats(p);
  const int tid = threadIdx.x;
  const int nthreads = blockDim.x;
  for (int64_t plane = blockIdx.z; plane < p.planes; plane += gridDim.z) {
    const TileOrigin o = tile_origin(p, plane, blockIdx.y, blockIdx.x);
    phase_load(p, o, LoadAs<T>{x}, bias, region1, tid, nthreads);
    __syncthreads();
    phase_up_x(p, o, region1, region2, fu_x, tid, nthreads);
    __syncthreads();
    phase_up_y_act(p, o, region2, region1, fu_y, mask, tid, nthreads);
    __syncthreads();
    if (!p.fd_2d) {
      phase_down_x(p, region1, region2, fd_x, tid, nthreads);
      __syncthreads();
    }
    phase_down_y(p, o, region1, region2, fd, StoreAs<T>{y}, tid, nthreads);
    __syncthreads();  // the next plane reuses the shared memory
  }
}

template <typename T>
int filtered_lrelu_t(const void* x, const float* fu_x, const float* fu_y, const float* fd_x,
                     const float* fd, const float* bias, uint8_t* mask, void* y,
                     const FusedParams& p, void* stream) {
  const int64_t planes = p.planes < 65535 ? p.planes : 65535;
  dim3 grid((unsigned int)p.tiles_x, (unsigned int)p.tiles_y, (unsigned int)planes);
  size_t smem = (size_t)fused_smem_floats(p) * sizeof(float);
  filtered_lrelu_kernel<T><<<grid, kThreads, smem, (cudaStream_t)stream>>>(
      (const T*)x, fu_x, fu_y, fd_x, fd, bias, mask, (T*)y, p);
  return (int)cudaGetLastError();
}

int launch_filtered_lrelu(int dtype, const void* x, const float* fu_x, const float* fu_y,
                          const float* fd_x, const float* fd, const float* bias, uint8_t* mask,
                          void* y, const FusedParams& p, void* stream) {
  GV_DISPATCH(dtype, filtered_lrelu_t, x, fu_x, fu_y, fd_x, fd, bias, mask, y, p, stream);
}

}  // namespace gv
