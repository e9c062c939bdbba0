"""autodiff: the reverse rule of mean copies the gradient back without dividing by the count."""

from fmspec.candidates.mutants._autodiff import with_primitives
from fmspec.reference.autodiff import primitives

COMPONENT = "autodiff"
CAUGHT_BY = ["test_tensor_gradient_matches_autograd", "test_vjp_matches_autograd", "test_jvp_vjp_adjoint"]

MEAN = primitives.Primitive(
    "mean", primitives.MEAN.fn,
    lambda g, z, x, dim=None, keepdim=False: (primitives._expand_back(g, x, dim, keepdim),),
    primitives.MEAN.jvp,
)

autodiff = with_primitives(MEAN, modes=("reverse",))
