// Vectorised elementwise kernels for π0's activations (AVX2+FMA with a portable fallback, chosen at
// run time). Callers split rows across threads. round_bf16 != 0 rounds each PyTorch-op result to
// bfloat16 (nearest-even), as LeRobot's bf16 data path does.
#pragma once
#include <stddef.h>

/// out[i] = gelu_tanh(gate[i]) * up[i] for i < n (out may alias gate). gelu_tanh(x) is computed as
/// x / (1 + exp(-2·sqrt(2/π)·(x + 0.044715·x³))), equal to 0.5·x·(1 + tanh(...)).
void pi0e_gelu_tanh_mul(const float *gate, const float *up, float *out, size_t n, int round_bf16);
/// In place x = gelu_tanh(x).
void pi0e_gelu_tanh(float *x, size_t n);
/// In place x = x / (1 + exp(-x)).
void pi0e_silu(float *x, size_t n);
/// bf16 attention scores: x = bf16(bf16(x) * scale) on rows [0, rows) x [0, cols) (row stride ld), as
/// PyTorch's bf16 matmul output followed by a bf16 multiply.
void pi0e_bf16_scores(float *x, size_t rows, size_t cols, size_t ld, float scale);
/// Rounds rows [0, rows) x [0, width) (row stride ld) to bf16 in place (nearest-even; NaN stays NaN).
void pi0e_round_bf16_rows(float *x, size_t rows, size_t width, size_t ld);
/// In place x += y (rounded to bf16 when asked).
void pi0e_add(float *x, const float *y, size_t n, int round_bf16);
/// π0.5's adaptive norm, in place on `rows` rows of `width`: x = x·(1 + scale) + shift (scale, shift:
/// [width], the same for every row), rounded to bf16 when asked: ReferenceOps.adaptiveModulate bit for bit.
void pi0e_adaptive_modulate(float *x, size_t rows, size_t width, const float *scale, const float *shift, int round_bf16);
/// The gated residual in place: x += y·gate (gate: [width]; with round_bf16 the gate, the product and the
/// sum each rounded): ReferenceOps.gatedAdd bit for bit.
void pi0e_gated_add(float *x, const float *y, size_t rows, size_t width, const float *gate, int round_bf16);
/// Gemma RMSNorm of `rows` rows of `width`: x·rsqrt(mean(x²) + eps)·(1 + w).
void pi0e_rmsnorm(const float *x, size_t rows, size_t width, const float *w, float eps, int round_bf16, float *out);
/// LayerNorm: (x − mean)/sqrt(var + eps)·w + b (biased variance).
void pi0e_layernorm(const float *x, size_t rows, size_t width, const float *w, const float *b, float eps, float *out);
/// Rotary embedding in place, exactly ReferenceOps.applyRoPE (pi0_rope.c): `tokens` rows of `heads` ×
/// `head_dim` (even) values at row stride `stride`; cos, sin: [tokens, head_dim]. max_simd caps the
/// instruction set used (2 AVX-512, 1 AVX2, 0 portable C; the CPU's best when higher), for tests.
void pi0e_rope(float *x, size_t tokens, size_t heads, size_t head_dim, size_t stride, const float *cos,
               const float *sin, int round_bf16, int max_simd);
