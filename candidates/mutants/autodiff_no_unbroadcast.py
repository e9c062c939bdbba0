"""autodiff: reverse mode does not sum gradients over broadcast dimensions (a gradient gets the output's shape)."""

from fmspec.candidates.mutants import rebind
from fmspec.candidates.mutants._autodiff import with_primitives
from fmspec.reference.autodiff import primitives

COMPONENT = "autodiff"
CAUGHT_BY = ["test_broadcast_gradient_has_input_shape", "test_tensor_gradient_matches_autograd",
             "test_vjp_matches_autograd"]

autodiff = with_primitives(
    *(primitives.Primitive(p.name, p.fn, rebind(p.vjp, unbroadcast=lambda g, shape: g), p.jvp)
      for p in (primitives.ADD, primitives.SUB, primitives.MUL, primitives.DIV)),
    modes=("reverse",),
)
