"""Meta-tests of the suites' numeric core: ``suites/tolerances.py`` and ``suites/asserts.py``.

Every verdict a suite gives goes through these few functions, so each is checked here directly on
hand-computed cases, passing and failing (as array-api-tests checks its own helpers in ``meta/``).
"""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from fmspec.suites import asserts as ah
from fmspec.suites import tolerances as tol

F64 = torch.float64
EPS64, EPS32 = 2.0**-52, 2.0**-23


def t64(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


# ---------------------------------------------------------------------------------------------- tolerances
@pytest.mark.parametrize("dtype, expected", [(torch.float64, 2.0**-52), (torch.float32, 2.0**-23),
                                             (torch.float16, 2.0**-10), (torch.bfloat16, 2.0**-7)],
                         ids=["float64", "float32", "float16", "bfloat16"])
def test_eps_per_dtype(dtype, expected):
    assert tol.eps(dtype) == expected


def test_eps_of_an_integer_dtype_raises():
    with pytest.raises(ValueError, match="no tolerance for dtype torch.int64"):
        tol.eps(torch.int64)


@pytest.mark.parametrize("dtype, n, expected", [
    (torch.float64, 1, 32 * 2.0**-52),
    (torch.float64, 0, 32 * 2.0**-52),  # an empty reduction counts as one term
    (torch.float32, 4, 32 * 2.0**-23 * 2),
    (torch.float32, 100, 32 * 2.0**-23 * 10),
    # low precision: the sum in float32, plus 2 ulps of the storage format for rounding the result
    (torch.float16, 4096, 32 * 2.0**-23 * 64 + 2 * 2.0**-10),
    (torch.bfloat16, 1, 32 * 2.0**-23 + 2 * 2.0**-7),
], ids=["f64-n1", "f64-n0", "f32-n4", "f32-n100", "f16-n4096", "bf16-n1"])
def test_rounding_floor(dtype, n, expected):
    assert tol.rounding_floor(dtype, n) == pytest.approx(expected, rel=1e-12)


def test_float16_floor_is_about_two_thousandths_at_4096():
    """The module docstring's number: 32·2^-23·64 + 2·2^-10 = 0.00220."""
    assert 0.0021 < tol.rounding_floor(torch.float16, 4096) < 0.0023


def test_allowed_without_baseline_is_the_floor():
    assert tol.allowed(torch.float32, 16) == tol.rounding_floor(torch.float32, 16) == 32 * 2.0**-23 * 4


def test_allowed_is_twice_a_same_dtype_baseline_above_the_floor():
    assert tol.allowed(torch.float32, 16, baseline_error=1e-3) == pytest.approx(2e-3)
    assert tol.allowed(torch.float32, 16, baseline_error=1e-9) == tol.rounding_floor(torch.float32, 16)
    assert tol.allowed(torch.float64, 1, baseline_error=0.0) == tol.rounding_floor(torch.float64, 1)


@pytest.mark.parametrize("actual, oracle, scale, expected", [
    ((1.0, 2.0), (1.0, 2.5), 0.0, 0.5 / 2.5),  # max|a - o| / max|o|
    ((1.0, 2.0), (1.0, 2.5), 10.0, 0.5 / 10.0),  # the terms' scale, when larger
    ((1.0, 2.0), (1.0, 2.5), 1.0, 0.5 / 2.5),  # a scale below max|o| changes nothing
    ((0.0, 0.0), (1.0, -3.0), 0.0, 1.0),  # an all-zero output is wrong by 1, never "close"
    ((0.0, 0.0), (0.0, 0.0), 0.0, 0.0),
    ((1e-20, 0.0), (0.0, 0.0), 0.0, math.inf),  # any error against an all-zero oracle
    ((1e-20, 0.0), (0.0, 0.0), 1e-10, 1e-10),  # ... unless measured against the terms
    ((math.inf, 1.0), (math.inf, 2.0), 0.0, 0.5),  # matching infinities are exact; the rest as usual
    ((-math.inf, 1.0), (math.inf, 1.0), 0.0, math.inf),
    ((math.nan, 1.0), (1.0, 1.0), 0.0, math.inf),
    ((1.0, 1.0), (1.0, math.nan), 0.0, math.inf),  # NaN never equals NaN: an oracle with NaN judges nothing
    ((2.0, 4.0), (1.0, 2.0), 0.0, 1.0),
], ids=["plain", "scale-above", "scale-below", "zeros-vs-nonzero", "zeros", "vs-zero-oracle", "vs-zero-oracle-scaled",
        "same-inf", "opposite-inf", "nan-actual", "nan-oracle", "twice"])
def test_rel_error(actual, oracle, scale, expected):
    assert tol.rel_error(t64(*actual), t64(*oracle), scale) == pytest.approx(expected, rel=1e-12)


def test_rel_error_of_empty_tensors_is_zero_and_is_computed_in_float64():
    assert tol.rel_error(torch.zeros(0), torch.zeros(0, dtype=F64)) == 0.0
    # float32 1 + 2^-23 against float64 1: the error is measured exactly, not rounded away
    assert tol.rel_error(torch.tensor([1.0 + EPS32], dtype=torch.float32), t64(1.0)) == EPS32


def test_rms_rel_error():
    """errors (0, 2) over an oracle of RMS 1: sqrt((0 + 4) / 2) = sqrt 2; a NaN anywhere is inf."""
    assert tol.rms_rel_error(t64(1.0, 1.0), t64(1.0, -1.0)) == pytest.approx(math.sqrt(2))
    assert tol.rms_rel_error(t64(1.0, math.nan), t64(1.0, -1.0)) == math.inf


# ------------------------------------------------------------------------------------------- assert_close
def test_assert_close_keeps_its_signature():
    """Suites call it with these keywords; new ones may only be added after them."""
    params = list(inspect.signature(ah.assert_close).parameters)
    assert params[:2] == ["actual", "oracle"]
    assert {"dtype", "n", "baseline", "scale", "name", "where"} <= set(params[2:])
    ah.assert_close(t64(1.0), t64(1.0), dtype=F64, n=1, baseline=t64(1.0), scale=0.0, name="x", where="w")


def test_assert_close_passes_within_the_floor_and_fails_beyond_it():
    oracle = t64(1.0, 2.0)
    ah.assert_close(oracle * (1 + 16 * EPS64), oracle)  # 16 eps < 32 eps
    with pytest.raises(AssertionError) as info:
        ah.assert_close(t64(1.0, 2.0 * (1 + 64 * EPS64)), oracle, name="y", where="f(2)")
    msg = str(info.value)
    assert msg.startswith("y: rel. error 1.42e-14 > allowed 7.1e-15 (float64, n=1); worst at (1,)"), msg
    assert msg.endswith(" [f(2)]"), msg


def test_assert_close_shows_enough_digits_to_tell_the_numbers_apart():
    with pytest.raises(AssertionError, match=r"got 1\.0000000001, expected 1 "):
        ah.assert_close(t64(1.0 + 1e-10), t64(1.0), where="w")
    with pytest.raises(AssertionError, match=r"got 0\.5, expected 0\.25$"):
        ah.assert_close(t64(0.5), t64(0.25))


def test_assert_close_n_widens_the_floor_as_sqrt_n():
    actual, oracle = t64(1.0 + 100 * EPS64), t64(1.0)  # 100 eps: over 32·sqrt(1), under 32·sqrt(16)
    with pytest.raises(AssertionError):
        ah.assert_close(actual, oracle, n=1)
    ah.assert_close(actual, oracle, n=16)


def test_assert_close_judges_in_the_candidates_dtype():
    """dtype defaults to actual's: float32 may be 32·2^-23 off; a float64 claim may not."""
    actual = torch.tensor([1.0 + 8 * EPS32], dtype=torch.float32)
    ah.assert_close(actual, t64(1.0))
    with pytest.raises(AssertionError, match=r"\(float64, n=1\)"):
        ah.assert_close(actual, t64(1.0), dtype=F64)


def test_assert_close_scale_measures_against_the_terms():
    """x = 1e-3 formed from terms of size 1: an error of 1e-15 is 1e-12 of x, but 1e-15 of the terms."""
    actual, oracle = t64(1e-3 + 1e-15), t64(1e-3)
    with pytest.raises(AssertionError):
        ah.assert_close(actual, oracle)
    ah.assert_close(actual, oracle, scale=1.0)
    with pytest.raises(AssertionError, match="relative to the terms' scale 1"):
        ah.assert_close(t64(1e-3 + 1e-13), oracle, scale=1.0)


def test_assert_close_baseline_sets_the_bar_at_twice_its_error():
    oracle = t64(1.0)
    baseline = torch.tensor([1.001], dtype=torch.float32)  # error 1e-3: allowed 2e-3
    ah.assert_close(torch.tensor([1.0015], dtype=torch.float32), oracle, baseline=baseline)
    with pytest.raises(AssertionError, match=r"baseline error 0\.001"):
        ah.assert_close(torch.tensor([1.003], dtype=torch.float32), oracle, baseline=baseline)
    with pytest.raises(AssertionError):  # without the baseline, the float32 floor (3.8e-6) rules
        ah.assert_close(torch.tensor([1.0015], dtype=torch.float32), oracle)


def test_assert_close_baseline_is_measured_at_the_same_scale():
    """The baseline's error is relative to the terms too: 1e-15 of terms of size 1 is not 1e-12 of x."""
    oracle = t64(1e-3)
    with pytest.raises(AssertionError):  # baseline error 1e-15 / 1 allows 2e-15 of the terms
        ah.assert_close(t64(1e-3 + 1e-11), oracle, baseline=t64(1e-3 + 1e-15), scale=1.0)


def test_assert_close_condition_multiplies_the_allowance():
    actual, oracle = t64(1.0 + 1e-14), t64(1.0)  # 1e-14 > 32·2^-52 = 7.1e-15
    with pytest.raises(AssertionError):
        ah.assert_close(actual, oracle)
    ah.assert_close(actual, oracle, condition=10.0)
    with pytest.raises(AssertionError, match="condition 10"):
        ah.assert_close(t64(1.0 + 1e-12), oracle, condition=10.0)
    with pytest.raises(AssertionError):  # a condition below 1 never tightens the floor below the plain one...
        ah.assert_close(actual, oracle, condition=0.5)
    ah.assert_close(t64(1.0 + 5e-15), oracle, condition=0.5)  # ...nor fails what the plain floor passes


@pytest.mark.parametrize("actual, message", [
    (t64(1.0, 2.0), r"out\.shape=\(2,\), expected \(3,\)"),
    ([1.0, 2.0, 3.0], "out: expected a torch.Tensor, got list"),
    (t64(1.0, math.nan, 3.0), "rel. error inf"),
    (t64(1.0, math.inf, 3.0), "rel. error inf"),
    (torch.zeros(3, dtype=F64), "rel. error 1 "),
], ids=["shape", "not-a-tensor", "nan", "inf", "zeros"])
def test_assert_close_rejects(actual, message):
    with pytest.raises(AssertionError, match=message):
        ah.assert_close(actual, t64(1.0, 2.0, 3.0))


# ------------------------------------------------------------------------------------- the other helpers
def test_assert_tensor():
    ah.assert_tensor(torch.zeros(2, 3), (2, 3), torch.float32)
    ah.assert_tensor(torch.zeros(2, 3), None, None)
    with pytest.raises(AssertionError, match=r"w\.shape=\(2, 3\), expected \(3, 2\) \[f\(x\)\]"):
        ah.assert_tensor(torch.zeros(2, 3), (3, 2), name="w", where="f(x)")
    with pytest.raises(AssertionError, match=r"out\.dtype=torch\.float32, expected torch\.float64"):
        ah.assert_tensor(torch.zeros(2, 3), (2, 3), F64)
    with pytest.raises(AssertionError, match="expected a torch.Tensor, got tuple"):
        ah.assert_tensor((1, 2), (2,))


def test_assert_equal_tensors():
    ah.assert_equal(torch.tensor([1, 2, 3]), torch.tensor([1, 2, 3]))
    with pytest.raises(AssertionError, match=r"ids: 2 elements differ; first at \(1,\): got 5, expected 2"):
        ah.assert_equal(torch.tensor([1, 5, 4]), torch.tensor([1, 2, 3]), name="ids")
    with pytest.raises(AssertionError, match=r"out\.shape=\(2,\), expected \(3,\)"):
        ah.assert_equal(torch.tensor([1, 2]), torch.tensor([1, 2, 3]))
    with pytest.raises(AssertionError, match="1 elements differ"):  # exact: one ulp is a difference
        ah.assert_equal(t64(1.0 + EPS64), t64(1.0))


def test_assert_equal_sequences_and_values():
    ah.assert_equal(["a", "b"], ["a", "b"])
    ah.assert_equal((1, 2), (1, 2))
    with pytest.raises(AssertionError, match=r"merges\[1\] = 'b', expected 'c' \(len 2 vs 2\)"):
        ah.assert_equal(["a", "b"], ["a", "c"], name="merges")
    with pytest.raises(AssertionError, match="out: length 2, expected 3"):
        ah.assert_equal([1, 2], [1, 2, 3])
    with pytest.raises(AssertionError, match=r"n = 1, expected 2 \[here\]"):
        ah.assert_equal(1, 2, name="n", where="here")


def test_assert_nontrivial():
    ah.assert_nontrivial(t64(1.0, 2.0))
    ah.assert_nontrivial(t64(5.0))  # one element: nothing to compare
    with pytest.raises(AssertionError, match="oracle is constant"):
        ah.assert_nontrivial(t64(3.0, 3.0, 3.0))


def test_flat():
    out = ah.flat([1.0, torch.tensor([[2.0, 3.0]], dtype=torch.float32), 4])
    assert out.dtype == F64 and out.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert ah.flat(torch.tensor(2.5)).tolist() == [2.5]
    assert ah.flat([]).shape == (0,)
    with pytest.raises(AssertionError, match=r"grads\[1\] is str, expected a number or a tensor \[f\]"):
        ah.flat([1.0, "2"], name="grads", where="f")
    with pytest.raises(AssertionError, match="is bool"):
        ah.flat(True)


def test_assert_within():
    ah.assert_within(t64(0.1, 0.2), t64(0.1, 0.3))
    with pytest.raises(AssertionError,
                       match=r"err: 1 elements beyond the bound; first at \(1,\): \|error\| = 0\.4 > 0\.3"):
        ah.assert_within(t64(0.1, 0.4), t64(0.1, 0.3), name="err")
    with pytest.raises(AssertionError, match="beyond the bound"):  # NaN is never within
        ah.assert_within(t64(math.nan), t64(1.0))


def test_assert_rounded():
    ah.assert_rounded(torch.tensor([1, 2, -3]), t64(1.2, 1.6, -2.7), F64)
    with pytest.raises(AssertionError,
                       match=r"q: 1 codes differ from round\(value\); first at \(1,\): got 1, value 1\.6"):
        ah.assert_rounded(torch.tensor([1, 1, -3]), t64(1.2, 1.6, -2.7), F64)
    ah.assert_rounded(torch.tensor([2]), t64(2.5), F64)  # a tie: either neighbour
    ah.assert_rounded(torch.tensor([3]), t64(2.5), F64)
    ah.assert_rounded(torch.tensor([127, -127]), t64(130.0, -200.0), F64)  # clamped to [lo, hi]
    with pytest.raises(AssertionError):
        ah.assert_rounded(torch.tensor([130]), t64(130.0), F64)
    # near a tie, within float32 rounding of the value, either neighbour is right; far from it, not
    ah.assert_rounded(torch.tensor([3]), t64(2.5 - 1e-7), torch.float32)
    with pytest.raises(AssertionError):
        ah.assert_rounded(torch.tensor([3]), t64(2.5 - 1e-7), F64)


def test_call_reports_an_input_modified_in_place():
    x = t64(1.0, 2.0)
    assert torch.equal(ah.call(lambda a: a * 2, "toy.double", x), t64(2.0, 4.0))
    with pytest.raises(AssertionError, match=r"argument 0 \(tensor\(shape=\(2,\), dtype=float64\)\) was modified in "
                                             r"place \[toy\.inc\(tensor\(shape=\(2,\), dtype=float64\)\)\]"):
        ah.call(lambda a: a.add_(1), "toy.inc", t64(1.0, 2.0))
    with pytest.raises(AssertionError, match="argument 'b' was modified in place"):
        ah.call(lambda a, b: b.mul_(0), "toy.f", t64(1.0), b=t64(1.0))
    with pytest.raises(AssertionError, match="argument 0"):  # a tensor inside a list counts too
        ah.call(lambda xs: xs[1].zero_(), "toy.g", [t64(1.0), t64(2.0)])


def test_snippet():
    assert ah.snippet("posenc.sinusoidal", 5, 8) == "posenc.sinusoidal(5, 8)"
    assert ah.snippet("f", torch.zeros(2, 3), causal=True) == "f(tensor(shape=(2, 3), dtype=float32), causal=True)"
    assert ah.snippet("f", list(range(20))) == "f(list(len=20))"


def test_call_reports_an_input_modified_in_place_and_put_back():
    """Values equal before and after, but the version counter moved: modified in place and restored."""
    def sneaky(x):
        x.add_(1.0)
        out = x * 2
        x.sub_(1.0)
        return out

    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    with pytest.raises(AssertionError, match=r"argument 0 .* version counter moved"):
        ah.call(sneaky, "toy.sneaky", x)


def test_call_reports_an_output_in_another_dtype():
    x32 = torch.ones(3)
    ah.call(lambda a: a * 2, "toy.f", x32)
    ah.call(lambda a: (a * 2, a.argmax()), "toy.f", x32)  # integer outputs keep their own dtype
    ah.call(lambda a, b: a + b, "toy.f", x32, t64(1.0))  # arguments of two dtypes: no rule
    with pytest.raises(AssertionError, match=r"out\.dtype=torch\.float64, expected torch\.float32 \(the arguments' "
                                             r"dtype\) \[toy\.f\(tensor"):
        ah.call(lambda a: a.double(), "toy.f", x32)
    with pytest.raises(AssertionError, match=r"out\[1\]\['b'\]\.dtype=torch\.float16"):
        ah.call(lambda a: (a * 1, {"b": a.half()}), "toy.f", x32)


def test_call_applies_the_contracts_own_dtypes():
    """flash's log-sum-exp is float32 for low-precision inputs and float64 for float64 ones."""
    fn = lambda q, dtype: (q * 2, (q * 0).to(dtype))  # noqa: E731
    ah.call(fn, "flash.flash_attention", torch.ones(2, dtype=torch.float16), torch.float32)
    ah.call(fn, "flash.flash_attention", t64(1.0), torch.float64)
    with pytest.raises(AssertionError, match=r"out\[1\]\.dtype=torch\.float16, expected torch\.float32 \(the "
                                             r"contract's dtype\)"):
        ah.call(fn, "flash.flash_attention", torch.ones(2, dtype=torch.float16), torch.float16)


def test_call_reports_an_output_on_another_device():
    with pytest.raises(AssertionError, match=r"out\.device=meta, expected cpu \(the arguments' device\)"):
        ah.call(lambda a: a.to("meta"), "toy.f", torch.ones(2))


def test_call_reports_an_output_sharing_an_arguments_memory():
    v = t64(1.0, 2.0)
    with pytest.raises(AssertionError, match=r"out shares memory with argument 1 .* must be new tensors"):
        ah.call(lambda q, v: v.expand(3, 2), "toy.attend", t64(0.0), v)
    with pytest.raises(AssertionError, match=r"out\[0\] shares memory with argument 'v'"):
        ah.call(lambda v: (v[1:], None), "toy.f", v=v)
    ah.call(lambda v: v.clone(), "toy.f", v)
    ah.call(lambda v: v.reshape(2, 1), "vit.patchify", v)  # a rearrangement may be a view (asserts.MAY_SHARE)


def test_functions_reached_through_a_candidate_are_checked_on_every_call():
    """The loader wraps a candidate's component functions, so a direct call in a test is checked too."""
    import types

    from fmspec import loader

    ns = types.SimpleNamespace(attention=types.SimpleNamespace(f=lambda v: v.expand(2, 2), g=lambda v: v * 2,
                                                               Layer=torch.nn.Linear))
    cand = loader.Candidate("toy", "test", "0", ns)
    assert torch.equal(cand.attention.g(t64(1.0, 2.0)), t64(2.0, 4.0))
    assert cand.attention.Layer is torch.nn.Linear  # classes, constants and returned objects are the candidate's own
    with pytest.raises(AssertionError, match=r"shares memory with argument 0 .* \[attention\.f\("):
        cand.attention.f(t64(1.0, 2.0))
    assert ah.call(cand.attention.g, "attention.g", t64(1.0)).item() == 2.0  # checked once, not twice
    with loader.unchecked():  # a benchmark times the candidate's own function
        assert cand.attention.f(t64(1.0, 2.0)).shape == (2, 2)
    with pytest.raises(AssertionError, match="shares memory"):
        cand.attention.f(t64(1.0, 2.0))
