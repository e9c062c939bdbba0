"""autodiff: reverse mode sums gradients over the leading dims broadcasting added, not over stretched size-1 dims."""

from fmspec.candidates.mutants import rebind
from fmspec.candidates.mutants._autodiff import with_primitives
from fmspec.reference.autodiff import primitives

COMPONENT = "autodiff"
CAUGHT_BY = ["test_broadcast_gradient_has_input_shape", "test_tensor_gradient_matches_autograd",
             "test_vjp_matches_autograd"]


def unbroadcast(g, shape):
    while g.dim() > len(shape):
        g = g.sum(0)  # a leading dimension broadcasting added; (m, 1) stretched to (m, n) is left as it is
    return g


autodiff = with_primitives(
    *(primitives.Primitive(p.name, p.fn, rebind(p.vjp, unbroadcast=unbroadcast), p.jvp)
      for p in (primitives.ADD, primitives.SUB, primitives.MUL, primitives.DIV)),
    modes=("reverse",),
)
