"""autodiff: matmul's reverse rule uses dA = G B instead of G Bᵀ."""

from fmspec.candidates.mutants._autodiff import with_primitives
from fmspec.reference.autodiff import primitives

COMPONENT = "autodiff"
CAUGHT_BY = ["test_matmul_gradient_is_transposed_product", "test_tensor_gradient_matches_autograd",
             "test_vjp_matches_autograd", "test_jvp_vjp_adjoint"]

def _matmul_vjp(g, z, a, b):
    a2, b2 = primitives._as_matrices(a, b)
    g2 = g.reshape(a2.shape[0], b2.shape[1])
    return (g2 @ b2).reshape(a.shape), (a2.T @ g2).reshape(b.shape)  # g2 @ b2.T


MATMUL = primitives.Primitive("matmul", primitives.MATMUL.fn, _matmul_vjp, primitives.MATMUL.jvp)

autodiff = with_primitives(MATMUL, modes=("reverse",))
