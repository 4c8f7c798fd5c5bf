// Host-side entry points of the CUDA kernels. Plain C++ types only, so ops.cpp (which includes
// torch) and the .cu files (which do not) can share this header.
#pragma once

#include <stdint.h>

#include "flrelu_core.h"
#include "ops_core.h"

namespace gv {

// Element types the kernels are instantiated for; ops.cpp maps torch dtypes onto them.
enum DType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

// Each launcher enqueues its kernel on `stream` (a cudaStream_t) and returns a cudaError_t
// (0 = success); `error_string` turns that code into text.
int launch_bias_act(int dtype, const void* x, const float* bias, void* y,
                    const BiasActParams& p, void* stream);
int launch_bias_act_grad(int dtype, const void* dy, const void* x, const float* bias, void* dx,
                         const BiasActParams& p, void* stream);
int launch_upfirdn_pass(int dtype, const void* x, const float* w, const float* bias,
                        const uint8_t* mask_in, uint8_t* mask_out, void* y,
                        const PassParams& p, void* stream);
// Fused filtered_lrelu forward; p must have its tiles set (set_tiles). fd_x is null for a 2-D fd
// (then fd is [fd_taps_y, fd_taps_x]), mask may be null (no backward needed).
int launch_filtered_lrelu(int dtype, const void* x, const float* fu_x, const float* fu_y,
                          const float* fd_x, const float* fd, const float* bias, uint8_t* mask,
                          void* y, const FusedParams& p, void* stream);
const char* error_string(int code);

// Shared memory available to one block of the fused kernel (the default limit, no opt-in).
constexpr int64_t kFusedSmemFloats = 48 * 1024 / 4;
constexpr int kFusedMaxTile = 32;

}  // namespace gv
