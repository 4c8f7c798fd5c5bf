// Host-side entry points of the CUDA kernels. Plain C++ types only, so ops.cpp (which includes
// torch) and the .cu files (which do not) can share this header.
#pragma once

#include <stdint.h>

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
const char* error_string(int code);

}  // namespace gv
