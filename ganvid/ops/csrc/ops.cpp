// Python bindings of ganvid's ops: argument checks, output allocation, and the launch on the
// current CUDA stream. CPU tensors (float32 only) run the same per-element math from
// ops_core.h in plain loops: the tests use that to check the kernels' index math without a GPU.
#include <torch/extension.h>

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <vector>

#include "flrelu_core.h"
#include "launch.h"
#include "ops_core.h"

namespace {

int dtype_code(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat32: return gv::kFloat32;
    case torch::kFloat16: return gv::kFloat16;
    case torch::kBFloat16: return gv::kBFloat16;
    default: TORCH_CHECK(false, "ganvid ops support float32, float16 and bfloat16, got ",
                         t.scalar_type());
  }
  return -1;
}

void check_cuda(int code, const char* what) {
  TORCH_CHECK(code == 0, "ganvid ", what, " kernel failed: ", gv::error_string(code));
}

void check_input(const torch::Tensor& x, const char* name) {
  TORCH_CHECK(x.is_contiguous(), name, " must be contiguous");
  if (x.is_cuda()) {
    dtype_code(x);
  } else {
    TORCH_CHECK(x.scalar_type() == torch::kFloat32, "CPU emulation supports float32 only");
  }
}

// Optional float32 tensor on x's device: empty means "none".
const float* optional_f32(const torch::Tensor& t, const torch::Tensor& x, int64_t numel,
                          const char* name) {
  if (t.numel() == 0) return nullptr;
  TORCH_CHECK(t.scalar_type() == torch::kFloat32 && t.is_contiguous(), name,
              " must be contiguous float32");
  TORCH_CHECK(t.device() == x.device(), name, " must be on the same device as x");
  TORCH_CHECK(t.numel() == numel, name, " has ", t.numel(), " elements, expected ", numel);
  return t.data_ptr<float>();
}

// Plane count, input size and geometry[0:6] = {up_x, up_y, down_x, down_y, pad_x0, pad_y0}.
template <typename Params>
void read_sampling(Params& p, const torch::Tensor& x, const std::vector<int64_t>& geometry) {
  p.planes = x.size(0) * x.size(1);
  p.channels = (int)x.size(1);
  p.in_h = (int)x.size(2);
  p.in_w = (int)x.size(3);
  p.up_x = (int)geometry[0];
  p.up_y = (int)geometry[1];
  p.down_x = (int)geometry[2];
  p.down_y = (int)geometry[3];
  p.pad_x0 = (int)geometry[4];
  p.pad_y0 = (int)geometry[5];
  TORCH_CHECK(p.up_x >= 1 && p.up_y >= 1 && p.down_x >= 1 && p.down_y >= 1,
              "up/down must be >= 1");
}

void* current_stream() { return (void*)c10::cuda::getCurrentCUDAStream().stream(); }

gv::BiasActParams bias_act_params(const torch::Tensor& x, int64_t step, int64_t channels,
                                  int64_t act, double alpha, double gain, double clamp) {
  gv::BiasActParams p;
  p.n = x.numel();
  p.step = step;
  p.channels = (int)channels;
  p.act = (int)act;
  p.alpha = (float)alpha;
  p.gain = (float)gain;
  p.clamp = (float)clamp;
  return p;
}

}  // namespace

// y = clamp(act(x + b) * gain); b (float32, may be empty) is indexed (i / step) % channels.
torch::Tensor bias_act(torch::Tensor x, torch::Tensor b, int64_t step, int64_t channels,
                       int64_t act, double alpha, double gain, double clamp) {
  check_input(x, "x");
  const float* bias = optional_f32(b, x, channels, "b");
  gv::BiasActParams p = bias_act_params(x, step, channels, act, alpha, gain, clamp);
  torch::Tensor y = torch::empty_like(x);
  if (p.n == 0) return y;
  if (x.is_cuda()) {
    c10::cuda::CUDAGuard guard(x.device());
    check_cuda(gv::launch_bias_act(dtype_code(x), x.data_ptr(), bias, y.data_ptr(), p,
                                   current_stream()),
               "bias_act");
  } else {
    const float* xp = x.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    for (int64_t i = 0; i < p.n; ++i) yp[i] = gv::bias_act_value(p, xp[i], gv::bias_at(p, bias, i));
  }
  return y;
}

// dL/dx of bias_act given dL/dy (same shape as x).
torch::Tensor bias_act_grad(torch::Tensor dy, torch::Tensor x, torch::Tensor b, int64_t step,
                            int64_t channels, int64_t act, double alpha, double gain,
                            double clamp) {
  check_input(x, "x");
  check_input(dy, "dy");
  TORCH_CHECK(dy.sizes() == x.sizes() && dy.scalar_type() == x.scalar_type() &&
                  dy.device() == x.device(),
              "dy must match x in shape, dtype and device");
  const float* bias = optional_f32(b, x, channels, "b");
  gv::BiasActParams p = bias_act_params(x, step, channels, act, alpha, gain, clamp);
  torch::Tensor dx = torch::empty_like(x);
  if (p.n == 0) return dx;
  if (x.is_cuda()) {
    c10::cuda::CUDAGuard guard(x.device());
    check_cuda(gv::launch_bias_act_grad(dtype_code(x), dy.data_ptr(), x.data_ptr(), bias,
                                        dx.data_ptr(), p, current_stream()),
               "bias_act backward");
  } else {
    const float* dyp = dy.data_ptr<float>();
    const float* xp = x.data_ptr<float>();
    float* dxp = dx.data_ptr<float>();
    for (int64_t i = 0; i < p.n; ++i) {
      dxp[i] = gv::bias_act_grad_value(p, dyp[i], xp[i], gv::bias_at(p, bias, i));
    }
  }
  return dx;
}

// One upfirdn pass over x [N, C, H, W] -> [N, C, out_h, out_w] with weights w [taps_y, taps_x]
// (cross-correlation order, gain folded in). geometry = {up_x, up_y, down_x, down_y, pad_x0,
// pad_y0, out_h, out_w}. b: optional float32 [C] added to input samples. epilogue: 0 none,
// 1 leaky ReLU forward (returns the uint8 mask as the second output), 2 multiply by the
// gradient of the leaky ReLU / clamp read from `mask` (uint8, shape of the output).
std::vector<torch::Tensor> upfirdn_pass(torch::Tensor x, torch::Tensor w, torch::Tensor b,
                                        torch::Tensor mask, std::vector<int64_t> geometry,
                                        int64_t epilogue, double gain, double slope,
                                        double clamp) {
  check_input(x, "x");
  TORCH_CHECK(x.dim() == 4, "x must be [N, C, H, W]");
  TORCH_CHECK(w.dim() == 2 && w.scalar_type() == torch::kFloat32 && w.is_contiguous() &&
                  w.device() == x.device(),
              "w must be a contiguous float32 [taps_y, taps_x] tensor on x's device");
  TORCH_CHECK(geometry.size() == 8, "geometry needs 8 values");
  gv::PassParams p;
  read_sampling(p, x, geometry);
  p.out_h = (int)geometry[6];
  p.out_w = (int)geometry[7];
  p.taps_y = (int)w.size(0);
  p.taps_x = (int)w.size(1);
  p.epilogue = (int)epilogue;
  p.gain = (float)gain;
  p.slope = (float)slope;
  p.clamp = (float)clamp;
  TORCH_CHECK(p.out_h >= 1 && p.out_w >= 1 && p.taps_x >= 1 && p.taps_y >= 1,
              "empty output or filter");
  TORCH_CHECK(epilogue >= 0 && epilogue <= 3, "unknown epilogue ", epilogue);
  const float* bias = optional_f32(b, x, p.channels, "b");

  torch::Tensor y = torch::empty({x.size(0), x.size(1), p.out_h, p.out_w}, x.options());
  torch::Tensor mask_out;
  const uint8_t* mask_in = nullptr;
  uint8_t* mask_out_ptr = nullptr;
  if (epilogue == gv::kLreluForward) {
    mask_out = torch::empty(y.sizes(), x.options().dtype(torch::kUInt8));
    mask_out_ptr = mask_out.data_ptr<uint8_t>();
  } else {
    mask_out = torch::empty({0}, x.options().dtype(torch::kUInt8));
  }
  if (epilogue == gv::kLreluBackward) {
    TORCH_CHECK(mask.scalar_type() == torch::kUInt8 && mask.is_contiguous() &&
                    mask.sizes() == y.sizes() && mask.device() == x.device(),
                "mask must be a contiguous uint8 tensor shaped like the output");
    mask_in = mask.data_ptr<uint8_t>();
  }
  if (y.numel() == 0) return {y, mask_out};

  if (x.is_cuda()) {
    c10::cuda::CUDAGuard guard(x.device());
    check_cuda(gv::launch_upfirdn_pass(dtype_code(x), x.data_ptr(), w.data_ptr<float>(), bias,
                                       mask_in, mask_out_ptr, y.data_ptr(), p, current_stream()),
               "upfirdn");
  } else {
    const float* xp = x.data_ptr<float>();
    const float* wp = w.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    auto load = [xp](int64_t k) { return xp[k]; };
    for (int64_t i = 0; i < y.numel(); ++i) {
      float acc = gv::pass_sum(p, load, wp, bias, i);
      yp[i] = gv::pass_epilogue(p, acc, mask_in, mask_out_ptr, i);
    }
  }
  return {y, mask_out};
}

namespace {

// 1-D float32 filter on x's device (an axis of a separable filter).
const float* filter_1d(const torch::Tensor& f, const torch::Tensor& x, const char* name,
                       int* taps) {
  TORCH_CHECK(f.dim() == 1 && f.scalar_type() == torch::kFloat32 && f.is_contiguous() &&
                  f.device() == x.device() && f.numel() >= 1,
              name, " must be a non-empty contiguous 1-D float32 tensor on x's device");
  *taps = (int)f.size(0);
  return f.data_ptr<float>();
}

}  // namespace

// Fused filtered_lrelu forward: x [N, C, H, W] -> y [N, C, out_h, out_w] (+ uint8 mask of the
// tmp signal [N, C, tmp_h, tmp_w] when want_mask). fu_x, fu_y: 1-D up filters per axis
// (cross-correlation order, gain folded in); fd_x, fd_y: 1-D down filters, or fd_x empty and
// fd_y the 2-D [taps_y, taps_x] filter. geometry = {up_x, up_y, down_x, down_y, pad_x0, pad_y0,
// tmp_h, tmp_w, out_h, out_w}.
std::vector<torch::Tensor> filtered_lrelu(torch::Tensor x, torch::Tensor fu_x, torch::Tensor fu_y,
                                          torch::Tensor fd_x, torch::Tensor fd_y, torch::Tensor b,
                                          std::vector<int64_t> geometry, double gain,
                                          double slope, double clamp, bool want_mask) {
  check_input(x, "x");
  TORCH_CHECK(x.dim() == 4, "x must be [N, C, H, W]");
  TORCH_CHECK(geometry.size() == 10, "geometry needs 10 values");
  gv::FusedParams p;
  read_sampling(p, x, geometry);
  p.tmp_h = (int)geometry[6];
  p.tmp_w = (int)geometry[7];
  p.out_h = (int)geometry[8];
  p.out_w = (int)geometry[9];
  p.gain = (float)gain;
  p.slope = (float)slope;
  p.clamp = (float)clamp;
  TORCH_CHECK(p.out_h >= 1 && p.out_w >= 1 && p.tmp_h >= 1 && p.tmp_w >= 1, "empty output");
  const float* fu_x_ptr = filter_1d(fu_x, x, "fu_x", &p.fu_taps_x);
  const float* fu_y_ptr = filter_1d(fu_y, x, "fu_y", &p.fu_taps_y);
  const float* fd_x_ptr = nullptr;
  const float* fd_ptr = nullptr;
  p.fd_2d = fd_x.numel() == 0 ? 1 : 0;
  if (p.fd_2d) {
    TORCH_CHECK(fd_y.dim() == 2 && fd_y.scalar_type() == torch::kFloat32 &&
                    fd_y.is_contiguous() && fd_y.device() == x.device(),
                "a 2-D fd must be a contiguous float32 [taps_y, taps_x] tensor on x's device");
    p.fd_taps_y = (int)fd_y.size(0);
    p.fd_taps_x = (int)fd_y.size(1);
    fd_ptr = fd_y.data_ptr<float>();
  } else {
    fd_x_ptr = filter_1d(fd_x, x, "fd_x", &p.fd_taps_x);
    fd_ptr = filter_1d(fd_y, x, "fd_y", &p.fd_taps_y);
  }
  TORCH_CHECK((int64_t)(p.out_h - 1) * p.down_y + p.fd_taps_y <= p.tmp_h &&
                  (int64_t)(p.out_w - 1) * p.down_x + p.fd_taps_x <= p.tmp_w,
              "output size does not fit the tmp size and the down filter");
  TORCH_CHECK(gv::set_tiles(p, gv::kFusedMaxTile, gv::kFusedSmemFloats),
              "filters too large for the fused filtered_lrelu kernel");
  TORCH_CHECK(p.tiles_x <= 65535 && p.tiles_y <= 65535, "image too large for one launch");
  const float* bias = optional_f32(b, x, p.channels, "b");

  torch::Tensor y = torch::empty({x.size(0), x.size(1), p.out_h, p.out_w}, x.options());
  torch::Tensor mask = want_mask ? torch::zeros({x.size(0), x.size(1), p.tmp_h, p.tmp_w},
                                                x.options().dtype(torch::kUInt8))
                                 : torch::empty({0}, x.options().dtype(torch::kUInt8));
  uint8_t* mask_ptr = want_mask ? mask.data_ptr<uint8_t>() : nullptr;
  if (y.numel() == 0) return {y, mask};

  if (x.is_cuda()) {
    c10::cuda::CUDAGuard guard(x.device());
    check_cuda(gv::launch_filtered_lrelu(dtype_code(x), x.data_ptr(), fu_x_ptr, fu_y_ptr,
                                         fd_x_ptr, fd_ptr, bias, mask_ptr, y.data_ptr(), p,
                                         current_stream()),
               "filtered_lrelu");
  } else {  // the kernel's phases, one "thread" index after another
    const float* xp = x.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    auto load = [xp](int64_t k) { return xp[k]; };
    auto store = [yp](int64_t k, float v) { yp[k] = v; };
    const int nthreads = 256;
    std::vector<float> smem((size_t)gv::fused_smem_floats(p));
    float* region1 = smem.data();
    float* region2 = region1 + gv::fused_region1_floats(p);
    for (int64_t plane = 0; plane < p.planes; ++plane) {
      for (int ty = 0; ty < p.tiles_y; ++ty) {
        for (int tx = 0; tx < p.tiles_x; ++tx) {
          const gv::TileOrigin o = gv::tile_origin(p, plane, ty, tx);
          for (int t = 0; t < nthreads; ++t) gv::phase_load(p, o, load, bias, region1, t, nthreads);
          for (int t = 0; t < nthreads; ++t) gv::phase_up_x(p, o, region1, region2, fu_x_ptr, t, nthreads);
          for (int t = 0; t < nthreads; ++t)
            gv::phase_up_y_act(p, o, region2, region1, fu_y_ptr, mask_ptr, t, nthreads);
          if (!p.fd_2d) {
            for (int t = 0; t < nthreads; ++t) gv::phase_down_x(p, region1, region2, fd_x_ptr, t, nthreads);
          }
          for (int t = 0; t < nthreads; ++t)
            gv::phase_down_y(p, o, region1, region2, fd_ptr, store, t, nthreads);
        }
      }
    }
  }
  return {y, mask};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "ganvid custom ops: bias_act, upfirdn passes (used by upfirdn2d, filtered_lrelu)";
  m.def("bias_act", &bias_act, "bias + activation + gain + clamp");
  m.def("bias_act_grad", &bias_act_grad, "gradient of bias_act w.r.t. x");
  m.def("upfirdn_pass", &upfirdn_pass, "one upsample/pad/FIR/downsample pass with epilogue");
  m.def("filtered_lrelu", &filtered_lrelu, "fused filtered_lrelu forward (+ sign/clamp mask)");
}
