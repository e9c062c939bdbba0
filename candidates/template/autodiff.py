"""autodiff: forward and reverse mode on straight-line programs. Spec: docs/spec/autodiff.md.

A program is a function ``f(ops, *vars)`` written with the operations of ``ops`` and the Python operators
+ - * / ** (constant exponent) and unary -, with floats on either side. Floats in give floats out (the
scalar tier); float64 tensors in give tensors out (the tensor tier, declared with
``CAPABILITIES = {"autodiff": {"tensors": False}}`` if you leave it out). Outside an operation's domain
(log of x <= 0, division by zero) raise ValueError or ZeroDivisionError, or return inf/nan, the same way
in both modes.

An engine of one mode only is fine: delete ``jvp`` and ``vjp`` (or ``grad``) and their checks are missing,
not failed.
"""


class ops:
    """The elementary operations. Each takes your variables, floats or tensors and returns a variable."""

    @staticmethod
    def add(a, b):
        raise NotImplementedError("autodiff.ops.add")

    @staticmethod
    def sub(a, b):
        raise NotImplementedError("autodiff.ops.sub")

    @staticmethod
    def mul(a, b):
        raise NotImplementedError("autodiff.ops.mul")

    @staticmethod
    def div(a, b):
        raise NotImplementedError("autodiff.ops.div")

    @staticmethod
    def neg(a):
        raise NotImplementedError("autodiff.ops.neg")

    @staticmethod
    def pow(a, c):
        """a ** c for a constant number c."""
        raise NotImplementedError("autodiff.ops.pow")

    @staticmethod
    def sin(a):
        raise NotImplementedError("autodiff.ops.sin")

    @staticmethod
    def cos(a):
        raise NotImplementedError("autodiff.ops.cos")

    @staticmethod
    def exp(a):
        raise NotImplementedError("autodiff.ops.exp")

    @staticmethod
    def log(a):
        raise NotImplementedError("autodiff.ops.log")

    @staticmethod
    def tanh(a):
        raise NotImplementedError("autodiff.ops.tanh")

    @staticmethod
    def sigmoid(a):
        raise NotImplementedError("autodiff.ops.sigmoid")

    @staticmethod
    def relu(a):
        """max(a, 0); derivative 0 at a = 0 (as torch)."""
        raise NotImplementedError("autodiff.ops.relu")

    # ------------------------------------------------------------------ tensor tier
    @staticmethod
    def matmul(a, b):
        """a @ b for 1-D or 2-D operands (torch.matmul semantics); also the ``@`` operator."""
        raise NotImplementedError("autodiff.ops.matmul")

    @staticmethod
    def sum(x, dim=None, keepdim=False):
        """Sum over ``dim`` (an int; None: all elements), as torch.sum."""
        raise NotImplementedError("autodiff.ops.sum")

    @staticmethod
    def mean(x, dim=None, keepdim=False):
        raise NotImplementedError("autodiff.ops.mean")

    @staticmethod
    def reshape(x, shape):
        raise NotImplementedError("autodiff.ops.reshape")

    @staticmethod
    def transpose(x, dim0=-2, dim1=-1):
        raise NotImplementedError("autodiff.ops.transpose")


def grad(f, *xs):
    """Reverse mode: ``(f(ops, *xs), (df/dx_1, ..., df/dx_d))``.

    f must return a scalar: a tuple raises TypeError and a tensor of several elements ValueError, each naming
    ``f``; inputs that are not numbers or tensors raise TypeError naming ``xs``. Floats in: a float and a tuple of floats;
    tensors in: a 0-d tensor and a tuple of tensors of the inputs' shapes. An input f does not use gets 0.
    """
    raise NotImplementedError("autodiff.grad")


def jvp(f, xs, tangents):
    """Forward mode: ``(f(ops, *xs), J u)`` with u = tangents (one per input, of its shape).

    For a scalar f that is the directional derivative ⟨∇f, u⟩. A tangents of the wrong length raises
    ValueError mentioning ``tangents``.
    """
    raise NotImplementedError("autodiff.jvp")


def vjp(f, xs, cotangent):
    """Tensor tier, reverse mode for a tensor-valued f: ``(f(ops, *xs), vᵀ J)``, one tensor per input."""
    raise NotImplementedError("autodiff.vjp")
