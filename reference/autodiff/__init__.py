"""Automatic differentiation of straight-line programs, forward and reverse mode (lecture 003).

A straight-line program computes f: R^d -> R one elementary step at a time,

    z_0 = w = (w_1, ..., w_d),   z_t = h_t(parents of t among z_0..z_{t-1}),   f(w) = z_T,

with each h_t affine, a product, or a fixed function whose derivative we know (sin, cos, exp, log,
tanh, sigmoid, relu, a constant power). Written against ``ops`` as ``f(ops, *vars)``:

    grad(f, *xs)          -> (f(xs), ∇f(xs))            reverse mode (reverse.py): one backward sweep
    jvp(f, xs, tangents)  -> (f(xs), ⟨∇f(xs), u⟩)       forward mode (forward.py): dual numbers
    vjp(f, xs, v)         -> (f(xs), vᵀ J_f(xs))        reverse mode for tensor-valued f (tensor tier)

Floats in give floats out (the scalar tier); float64 tensors in give tensors out (the tensor tier:
matmul, sum, mean, reshape, transpose, broadcasting; a gradient has its input's shape). The elementary
functions and their derivatives are in primitives.py, the operations a program calls in ops.py.

Worked example (the lecture's):

    f(w1, w2) = (sin(2π w1/w2) + 3 w1/w2 - exp(2 w2)) · (3 w1/w2 - exp(2 w2))

    z1 = w1 / w2     z2 = sin(2π z1)     z3 = exp(2 w2)     z4 = 3 z1 - z3     z5 = z2 + z4     z6 = z4 z5

z1 has two children (z2, z4), z4 has two (z5, z6): their adjoints are sums of two terms. At
w2 = ln(2)/2, w1 = w2/4 (so z1 = 1/4, z3 = 2):

    z1..z6 = 1/4, 1, 2, -5/4, -1/4, 5/16
    adjoints dz6/dz_t, t = 6..1: 1, z4 = -5/4, z5 + z4 = -3/2, 3/2, -5/4, 3·(-3/2) + (-5/4)·2π cos(π/2) = -9/2
    ∇f = (-9/2 · 1/w2,  -9/2 · (-w1/w2²) + 3/2 · 2 z3) = (-9/ln 2,  6 + 9/(4 ln 2)) ≈ (-12.984, 9.246)

    >>> grad(lambda ops, w1, w2: ..., math.log(2) / 8, math.log(2) / 2)
    (0.3125, (-12.984..., 9.246...))
"""

from fmspec.reference.autodiff import ops
from fmspec.reference.autodiff.forward import jvp
from fmspec.reference.autodiff.reverse import grad, vjp

__all__ = ["ops", "grad", "jvp", "vjp"]
