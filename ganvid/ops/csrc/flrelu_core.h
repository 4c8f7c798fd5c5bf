// Fused filtered_lrelu forward, written as block-synchronous phases over shared-memory tiles.
// The CUDA kernel runs the phases with __syncthreads() between them; the CPU emulation in
// ops.cpp runs each phase for every thread index before starting the next, which is the same
// computation for race-free phases (each phase writes disjoint elements and only reads what
// earlier phases wrote). No torch or CUDA headers here.
//
// One block computes a tile_h x tile_w tile of outputs of one (n, c) plane:
//   1. load the input samples the tile needs (+ bias; zeros outside the image)   -> A
//   2. upsample along x: zero-stuff by up_x, shift by pad_x0, FIR fu_x            -> U
//   3. upsample along y with fu_y, then gain, leaky ReLU, clamp (+ sign mask)    -> T (tmp)
//   4. FIR fd_x along x keeping every down_x-th sample (separable fd only)        -> D
//   5. FIR fd_y along y keeping every down_y-th sample (or the 2-D fd) -> output
// Buffers: A and T share one region (A is dead once T is written), U and D the other.
#pragma once

#include "ops_core.h"

namespace gv {

struct FusedParams {
  int64_t planes;
  int channels;
  int in_h, in_w, tmp_h, tmp_w, out_h, out_w;
  int up_x, up_y, down_x, down_y, pad_x0, pad_y0;
  int fu_taps_x, fu_taps_y, fd_taps_x, fd_taps_y;
  int fd_2d;  // 1: fd is [fd_taps_y, fd_taps_x]; 0: separable fd_x [fd_taps_x], fd_y [fd_taps_y]
  float gain, slope, clamp;  // clamp < 0 = none
  // Tile geometry, filled in by set_tiles():
  int tile_h, tile_w;          // outputs per block
  int tmp_tile_h, tmp_tile_w;  // tmp samples per block
  int in_tile_h, in_tile_w;    // input samples per block (upper bound)
  int tiles_y, tiles_x;
};

// Smem floats of region 1 (A, then T) and in all (+ region 2: U, then D).
GV_HD int64_t fused_region1_floats(const FusedParams& p) {
  int64_t a = (int64_t)p.in_tile_h * p.in_tile_w;
  int64_t t = (int64_t)p.tmp_tile_h * p.tmp_tile_w;
  return a > t ? a : t;
}

GV_HD int64_t fused_smem_floats(const FusedParams& p) {
  int64_t u = (int64_t)p.in_tile_h * p.tmp_tile_w;
  int64_t d = p.fd_2d ? 0 : (int64_t)p.tmp_tile_h * p.tile_w;
  return fused_region1_floats(p) + (u > d ? u : d);
}

GV_HD void set_tile_size(FusedParams& p, int tile_h, int tile_w) {
  p.tile_h = tile_h;
  p.tile_w = tile_w;
  p.tmp_tile_h = (tile_h - 1) * p.down_y + p.fd_taps_y;
  p.tmp_tile_w = (tile_w - 1) * p.down_x + p.fd_taps_x;
  // Input samples meeting tmp rows [j0, j0 + tmp_tile_h): at most floor(L / up) + 1 of them,
  // L = tmp_tile_h - 1 + fu_taps - 1 (see first_tap in ops_core.h).
  p.in_tile_h = (p.tmp_tile_h + p.fu_taps_y - 2) / p.up_y + 1;
  p.in_tile_w = (p.tmp_tile_w + p.fu_taps_x - 2) / p.up_x + 1;
  p.tiles_y = (p.out_h + tile_h - 1) / tile_h;
  p.tiles_x = (p.out_w + tile_w - 1) / tile_w;
}

// Even tiles of at most `max_side` outputs, halved until they fit `max_floats` of smem.
// Returns false if even a 1x1 tile does not fit.
inline bool set_tiles(FusedParams& p, int max_side, int64_t max_floats) {
  int count_y = (p.out_h + max_side - 1) / max_side;  // fewest tiles of <= max_side, then even
  int count_x = (p.out_w + max_side - 1) / max_side;
  int th = (p.out_h + count_y - 1) / count_y;
  int tw = (p.out_w + count_x - 1) / count_x;
  set_tile_size(p, th, tw);
  while (fused_smem_floats(p) > max_floats) {
    if (th == 1 && tw == 1) return false;
    if (th >= tw) th = (th + 1) / 2; else tw = (tw + 1) / 2;
    set_tile_size(p, th, tw);
  }
  return true;
}

struct TileOrigin {
  int64_t plane;
  int oy0, ox0;  // first output
  int ty0, tx0;  // first tmp sample
  int iy0, ix0;  // first input sample (may be negative: zeros)
};

GV_HD TileOrigin tile_origin(const FusedParams& p, int64_t plane, int tile_y, int tile_x) {
  TileOrigin o;
  o.plane = plane;
  o.oy0 = tile_y * p.tile_h;
  o.ox0 = tile_x * p.tile_w;
  o.ty0 = o.oy0 * p.down_y;
  o.tx0 = o.ox0 * p.down_x;
  o.iy0 = ceil_div(o.ty0 - p.pad_y0, p.up_y);
  o.ix0 = ceil_div(o.tx0 - p.pad_x0, p.up_x);
  return o;
}

// Phase 1: A[r][c] = x[iy0 + r][ix0 + c] + bias, zero outside the image.
template <typename Load>
GV_HD void phase_load(const FusedParams& p, const TileOrigin& o, Load load, const float* bias,
                      float* A, int tid, int nthreads) {
  const int64_t base = o.plane * (int64_t)p.in_h * p.in_w;
  const float b = bias ? bias[o.plane % p.channels] : 0.0f;
  const int n = p.in_tile_h * p.in_tile_w;
  for (int k = tid; k < n; k += nthreads) {
    int iy = o.iy0 + k / p.in_tile_w;
    int ix = o.ix0 + k % p.in_tile_w;
    bool inside = iy >= 0 && iy < p.in_h && ix >= 0 && ix < p.in_w;
    A[k] = inside ? load(base + (int64_t)iy * p.in_w + ix) + b : 0.0f;
  }
}

// Phase 2: U[r][jc] = sum_t A[r][ia - ix0] * fu_x[t] for tmp column j = tx0 + jc.
GV_HD void phase_up_x(const FusedParams& p, const TileOrigin& o, const float* A, float* U,
                      const float* fu_x, int tid, int nthreads) {
  const int n = p.in_tile_h * p.tmp_tile_w;
  for (int k = tid; k < n; k += nthreads) {
    int r = k / p.tmp_tile_w;
    int jc = k % p.tmp_tile_w;
    int j = o.tx0 + jc;
    int ia = ceil_div(j - p.pad_x0, p.up_x);
    const float* row = A + r * p.in_tile_w;
    float acc = 0.0f;
    for (int t = ia * p.up_x + p.pad_x0 - j; t < p.fu_taps_x; t += p.up_x, ++ia) {
      acc += row[ia - o.ix0] * fu_x[t];
    }
    U[k] = acc;
  }
}

// Phase 3: T[jr][jc] = act(sum_t U[ia - iy0][jc] * fu_y[t]) for tmp row j = ty0 + jr, and the
// mask code of in-range tmp samples (overlapping tiles write identical codes).
GV_HD void phase_up_y_act(const FusedParams& p, const TileOrigin& o, const float* U, float* T,
                          const float* fu_y, uint8_t* mask, int tid, int nthreads) {
  const int n = p.tmp_tile_h * p.tmp_tile_w;
  for (int k = tid; k < n; k += nthreads) {
    int jr = k / p.tmp_tile_w;
    int jc = k % p.tmp_tile_w;
    int j = o.ty0 + jr;
    int ia = ceil_div(j - p.pad_y0, p.up_y);
    float acc = 0.0f;
    for (int t = ia * p.up_y + p.pad_y0 - j; t < p.fu_taps_y; t += p.up_y, ++ia) {
      acc += U[(ia - o.iy0) * p.tmp_tile_w + jc] * fu_y[t];
    }
    float y = (acc > 0.0f ? acc : acc * p.slope) * p.gain;
    uint8_t code = acc > 0.0f ? 1 : 2;
    if (p.clamp >= 0.0f && fabsf(y) > p.clamp) {
      y = y > 0.0f ? p.clamp : -p.clamp;
      code = 0;
    }
    T[k] = y;
    int col = o.tx0 + jc;
    if (mask && j < p.tmp_h && col < p.tmp_w) {
      mask[(o.plane * p.tmp_h + j) * (int64_t)p.tmp_w + col] = code;
    }
  }
}

// Phase 4 (separable fd): D[r][c] = sum_t T[r][c * down_x + t] * fd_x[t].
GV_HD void phase_down_x(const FusedParams& p, const float* T, float* D, const float* fd_x,
                        int tid, int nthreads) {
  const int n = p.tmp_tile_h * p.tile_w;
  for (int k = tid; k < n; k += nthreads) {
    int r = k / p.tile_w;
    int c = k % p.tile_w;
    const float* row = T + r * p.tmp_tile_w + c * p.down_x;
    float acc = 0.0f;
    for (int t = 0; t < p.fd_taps_x; ++t) acc += row[t] * fd_x[t];
    D[k] = acc;
  }
}

// Phase 5: the tile's outputs, from D along y (separable) or from T with the 2-D fd.
template <typename Store>
GV_HD void phase_down_y(const FusedParams& p, const TileOrigin& o, const float* T,
                        const float* D, const float* fd, Store store, int tid, int nthreads) {
  const int n = p.tile_h * p.tile_w;
  for (int k = tid; k < n; k += nthreads) {
    int r = k / p.tile_w;
    int c = k % p.tile_w;
    int oy = o.oy0 + r;
    int ox = o.ox0 + c;
    if (oy >= p.out_h || ox >= p.out_w) continue;
    float acc = 0.0f;
    if (p.fd_2d) {
      for (int ty = 0; ty < p.fd_taps_y; ++ty) {
        const float* row = T + (r * p.down_y + ty) * p.tmp_tile_w + c * p.down_x;
        const float* w = fd + ty * p.fd_taps_x;
        for (int tx = 0; tx < p.fd_taps_x; ++tx) acc += row[tx] * w[tx];
      }
    } else {
      for (int t = 0; t < p.fd_taps_y; ++t) acc += D[(r * p.down_y + t) * p.tile_w + c] * fd[t];
    }
    store((o.plane * p.out_h + oy) * (int64_t)p.out_w + ox, acc);
  }
}

}  // namespace gv
