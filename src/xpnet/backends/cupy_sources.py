"""The CUDA C bodies of the CuPy kernels, as data: one ``ElementwiseKernel`` each.

Kept apart from :mod:`xpnet.backends.cupy_kernels` (which needs CuPy and a GPU) so that the
bodies can be checked where there is neither: ``tests/test_cupy_sources.py`` compiles every
body with the host C++ compiler and compares it with the portable kernels on NumPy, bit for bit
for the dropout generator and to 1e-12 / 1e-5 for the arithmetic, and compiles them with
``nvcc`` as CUDA device code where ``nvcc`` exists.

Each entry is ``(in_params, out_params, body)`` in ``cupy.ElementwiseKernel``'s notation:
``T`` is the floating type of the arrays (float32 or float64), scalars are ``float64`` or
``uint32``, ``i`` is the element's index (row-major, the counter of :mod:`xpnet.core.random`).
Output parameters are read-write references, so ``Z`` may hold W A before the kernel and
W A + b after it. Only ``exp``, ``tanh``, ``fabs``, ``sqrt`` and arithmetic are used: the
same names exist in CUDA's device math library and in ``<cmath>``.
"""

from __future__ import annotations

__all__ = ["ACTIVATION", "BIAS_ACTIVATION", "COLUMN", "DERIVATIVE", "ELEMENTWISE", "HIDDEN",
           "MIX32", "column_source", "kernel_name"]

# A = g(Z) as a C statement, for the hidden activations (sigmoid without overflow: E <= 1)
ACTIVATION = {
    "relu": "A = Z > (T)0 ? Z : (T)0;",
    "leaky_relu": "A = Z > (T)0 ? Z : (T)0.01 * Z;",
    "sigmoid": "T E = exp(-fabs(Z)); A = Z >= (T)0 ? (T)1 / ((T)1 + E) : E / ((T)1 + E);",
    "tanh": "A = tanh(Z);",
    "identity": "A = Z;",
}
# dZ = dA * g'(Z), g'(Z) from A = g(Z) where it can be (as xpnet.core.activations)
DERIVATIVE = {
    "relu": "dZ = Z > (T)0 ? dA : (T)0;",
    "leaky_relu": "dZ = Z > (T)0 ? dA : dA * (T)0.01;",
    "sigmoid": "dZ = dA * (A * ((T)1 - A));",
    "tanh": "dZ = dA * ((T)1 - A * A);",
    "identity": "dZ = dA;",
}
HIDDEN = tuple(ACTIVATION)

# lowbias32 (xpnet.core.random.mix32) on 32-bit unsigned ints: the multiplications wrap mod 2^32
MIX32 = ("x ^= x >> 16; x *= 0x7feb352dU; x ^= x >> 15; x *= 0x846ca68bU; x ^= x >> 16;")


def _bias_activation(g: str) -> tuple[str, str, str]:
    """Z := Z + b;  A = g(Z)   (b broadcast from (n[l], 1) over the m columns)."""
    return "T b", "T Z, T A", "Z = Z + b; " + ACTIVATION[g]


BIAS_ACTIVATION = {g: _bias_activation(g) for g in HIDDEN}

ELEMENTWISE: dict[str, tuple[str, str, str]] = {
    # forward: Z[l] := W[l] A[l-1] + b[l];  A[l] = g(Z[l])
    **{f"bias_{g}": BIAS_ACTIVATION[g] for g in HIDDEN},
    # backward: dZ[l] = dA[l] * g'(Z[l])
    **{f"backward_{g}": ("T dA, T Z, T A", "T dZ", DERIVATIVE[g]) for g in HIDDEN},
    # D[l] = [U < T] / keep, U = mix32(mix32(i ^ k1) ^ k2) >> 8 (xpnet.core.random.dropout_mask)
    "dropout_mask": (
        "int64 k1, int64 k2, uint32 threshold, float64 inv_keep", "T D",
        "unsigned int x = ((unsigned int)i) ^ (unsigned int)k1; " + MIX32 +
        " x ^= (unsigned int)k2; " + MIX32 +
        " D = (x >> 8) < threshold ? (T)inv_keep : (T)0;"),
    # dZ[L] = (1/m) (A[L] - Y)
    "output_delta": ("T A, T Y, float64 inv_m", "T dZ", "dZ = (A - Y) * (T)inv_m;"),
    # p := p - lr g
    "sgd": ("T g, T lr", "T p", "p -= lr * g;"),
    # v := mu v - lr g;  p := p + v
    "momentum": ("T g, T lr, float64 mu", "T p, T v",
                 "v = (T)mu * v - lr * g; p += v;"),
    # v := mu v - lr g;  p := p + mu v - lr g
    "nesterov": ("T g, T lr, float64 mu", "T p, T v",
                 "T u = lr * g; v = (T)mu * v - u; p += (T)mu * v - u;"),
    # m := b1 m + (1-b1) g;  v := b2 v + (1-b2) g^2;  p := p - lr_t m / (sqrt(v) + eps)
    "adam": ("T g, T lr_t, float64 b1, float64 b2, float64 eps", "T p, T m, T v",
             "m = (T)b1 * m + (T)(1.0 - b1) * g; v = (T)b2 * v + (T)(1.0 - b2) * (g * g); "
             "p -= lr_t * m / (sqrt(v) + (T)eps);"),
}


def kernel_name(key: str) -> str:
    """The CUDA function name of ``ELEMENTWISE[key]``."""
    return f"xpnet_{key}"


# --------------------------------------------------------------------------- one thread a column
# Kernels over the m columns of an (n, m) output layer, one thread per column j (n is small:
# the classes). ``params``: C parameters with T for the float type; ``body``: C statements
# using j. Arrays are addressed with their strides in elements (Y is a transposed view).
COLUMN: dict[str, tuple[str, str]] = {
    # S_j = sum_k y_kj clip(lse_j - z_kj);  dZ[L]_kj = (softmax(z_j)_k - y_kj) / m
    # (lse_j = max_k z_kj + log sum_k exp(z_kj - max): cross-entropy and its delta, fused;
    # clip to [-log(1 - eps), -log eps]: p in [eps, 1 - eps], scikit-learn's clipping)
    "softmax_xent": (
        "const T* Z, long long zs0, long long zs1, const T* Y, long long ys0, long long ys1, "
        "T* dZ, T* S, int n, int m, double inv_m",
        "T mx = Z[j * zs1]; "
        "for (int k = 1; k < n; ++k) { T z = Z[k * zs0 + j * zs1]; mx = z > mx ? z : mx; } "
        "T s = (T)0; "
        "for (int k = 0; k < n; ++k) s += exp(Z[k * zs0 + j * zs1] - mx); "
        "T lse = mx + log(s); T loss = (T)0; "
        "const double eps = sizeof(T) == 4 ? 1.1920928955078125e-07 : 2.220446049250313e-16; "
        "const T lo = (T)(-log1p(-eps)), hi = (T)(-log(eps)); "
        "for (int k = 0; k < n; ++k) { "
        "  T z = Z[k * zs0 + j * zs1]; T y = Y[k * ys0 + j * ys1]; T l = lse - z; "
        "  loss += y * (l < lo ? lo : (l > hi ? hi : l)); "
        "  dZ[(long long)k * m + j] = (exp(z - mx) / s - y) * (T)inv_m; } "
        "S[j] = loss;"),
}


def column_source(key: str, T: str) -> str:
    """The CUDA source of ``COLUMN[key]`` for float type ``T`` ("float" or "double")."""
    params, body = COLUMN[key]
    return (f'extern "C" __global__ void {kernel_name(key)}_{T}('
            f'{params.replace("T*", T + "*").replace("T ", T + " ")}) {{ '
            f"typedef {T} T; int j = blockIdx.x * blockDim.x + threadIdx.x; if (j >= m) return; "
            f"{body} }}")
