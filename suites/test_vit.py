"""vit: patchify, unpatchify, PatchEmbed, position-embedding interpolation (spec: docs/spec/vit.md;
reference: reference/vit.py).

Oracles: slicing the image patch by patch (patchify), ``torch.nn.functional.conv2d`` in float64 (the
patch embedding), a cubic-convolution matrix written out here (Keys, 1981, a = -0.75: what bicubic
``F.interpolate`` computes) for the position embeddings, and timm's ``PatchEmbed`` where installed.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st

from fmspec.suites import asserts as ah
from fmspec.suites import strategies as ss

pytestmark = pytest.mark.component("vit")
PF, UF, PE, IP = "vit.patchify", "vit.unpatchify", "vit.PatchEmbed", "vit.interpolate_pos_embed"

DTYPES = [pytest.param(torch.float32, id="float32"), pytest.param(torch.float64, id="float64")]


@st.composite
def image_shapes(draw, max_patch: int = 5, max_grid: int = 4) -> tuple[tuple[int, int, int, int], int]:
    """((B, C, H, W), P) with H and W multiples of P; non-square grids and P = 1 included."""
    patch = draw(st.integers(1, max_patch), label="patch")
    gh, gw = draw(ss.sizes(1, max_grid), label="gh"), draw(ss.sizes(1, max_grid), label="gw")
    b, c = draw(ss.sizes(1, 2), label="B"), draw(ss.sizes(1, 3), label="C")
    return (b, c, gh * patch, gw * patch), patch


# --------------------------------------------------------------------------------------------- oracles
def patches_by_slicing(images: torch.Tensor, patch: int) -> torch.Tensor:
    """Patch (i, j) of the grid is row i·gw + j; it holds images[:, :, iP:(i+1)P, jP:(j+1)P] in (C, P, P) order."""
    B, C, H, W = images.shape
    rows = []
    for i in range(H // patch):
        for j in range(W // patch):
            rows.append(images[:, :, i * patch:(i + 1) * patch, j * patch:(j + 1) * patch].reshape(B, -1))
    return torch.stack(rows, dim=1)  # (B, N, C·P·P)


def conv_embed(images64: torch.Tensor, weight64: torch.Tensor, bias64: torch.Tensor, patch: int) -> torch.Tensor:
    """The paper's code: Conv2d with kernel = stride = P, then the grid flattened row-major."""
    return F.conv2d(images64, weight64, bias64, stride=patch).flatten(2).transpose(1, 2)  # (B, N, E)


def cubic_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) weights of bicubic resizing, align_corners=False, a = -0.75, edge samples repeated."""
    a = -0.75

    def kernel(d: float) -> float:
        d = abs(d)
        if d <= 1:
            return (a + 2) * d**3 - (a + 3) * d**2 + 1
        if d < 2:
            return a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a
        return 0.0

    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    for o in range(n_out):
        src = (o + 0.5) * n_in / n_out - 0.5  # the output pixel's centre, in input coordinates
        base = math.floor(src)
        for k in range(-1, 3):
            m[o, min(max(base + k, 0), n_in - 1)] += kernel(src - (base + k))
    return m


def resized_pos_embed(pos64: torch.Tensor, old: tuple[int, int], new: tuple[int, int], n_prefix: int,
                      terms: bool = False) -> torch.Tensor:
    """The grid resized by the cubic matrices along each side; ``terms``: the same with |weights| and |pos|, the
    size of the terms each output sums (the cubic kernel has negative lobes: a sum may cancel), for
    ``assert_close(scale=)``."""
    B, _, E = pos64.shape
    mh, mw = cubic_matrix(old[0], new[0]), cubic_matrix(old[1], new[1])
    if terms:
        pos64, mh, mw = pos64.abs(), mh.abs(), mw.abs()
    grid = pos64[:, n_prefix:].reshape(B, old[0], old[1], E)  # (B, gh, gw, E)
    out = torch.einsum("ph,bhwe,qw->bpqe", mh, grid, mw)
    return torch.cat([pos64[:, :n_prefix], out.reshape(B, new[0] * new[1], E)], dim=1)


def make_embed(candidate, img_size, patch: int, in_chans: int, embed_dim: int, dtype: torch.dtype, seed: int):
    """A candidate PatchEmbed holding known weights (drawn here), and those weights in float64."""
    weight = ss.randn((embed_dim, in_chans, patch, patch), seed, scale=1 / patch)
    bias = ss.randn((embed_dim,), seed + 1)
    where = ah.snippet(PE, img_size, patch, in_chans, embed_dim)
    module = candidate.vit.PatchEmbed(img_size, patch, in_chans, embed_dim).to(dtype)
    ah.assert_tensor(module.proj.weight, tuple(weight.shape), name="proj.weight", where=where)
    with torch.no_grad():
        module.proj.weight.copy_(weight)
        module.proj.bias.copy_(bias)
    return module, weight.to(dtype).to(torch.float64), bias.to(dtype).to(torch.float64), where


# ------------------------------------------------------------------------------------ worked examples
@pytest.mark.smoke
@pytest.mark.needs(PF)
def test_patchify_worked_example(candidate):
    """A 4x4 image of 0..15, P = 2: row-major patches [0,1,4,5], [2,3,6,7], [8,9,12,13], [10,11,14,15];
    with two channels each patch lists channel 0's pixels, then channel 1's."""
    img = torch.arange(16, dtype=torch.float64).reshape(1, 1, 4, 4)
    out = ah.call(candidate.vit.patchify, PF, img, 2)
    expected = torch.tensor([[[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]], dtype=torch.float64)
    ah.assert_equal(out, expected, name="patches", where=ah.snippet(PF, img, 2))
    img2 = torch.arange(8, dtype=torch.float64).reshape(1, 2, 2, 2)  # C = 2, one 2x2 patch
    out2 = ah.call(candidate.vit.patchify, PF, img2, 2)
    ah.assert_equal(out2, torch.arange(8, dtype=torch.float64).reshape(1, 1, 8), name="patch (C, P, P) order",
                    where=ah.snippet(PF, img2, 2))


@pytest.mark.smoke
@pytest.mark.needs(PE)
def test_vit_16_worked_numbers(candidate):
    """ViT-B/16 on 224x224 RGB: N = 14·14 = 196 patches of 3·16·16 = 768 values, E = 768, so the patch
    embedding has 768·768 + 768 = 590,592 parameters; ViT-H/14 sees 16·16 = 256 patches (753,920 parameters)."""
    embed = candidate.vit.PatchEmbed(224, 16, 3, 768)
    where = ah.snippet(PE, 224, 16, 3, 768)
    ah.assert_equal(embed.num_patches, 196, name="num_patches", where=where)
    ah.assert_equal(tuple(embed.grid_size), (14, 14), name="grid_size", where=where)
    ah.assert_equal(sum(p.numel() for p in embed.parameters()), 590_592, name="parameters", where=where)
    out = embed(torch.zeros(1, 3, 224, 224))
    ah.assert_tensor(out, (1, 196, 768), name="tokens", where=where)
    huge = candidate.vit.PatchEmbed(224, 14, 3, 1280)
    where = ah.snippet(PE, 224, 14, 3, 1280)
    ah.assert_equal(huge.num_patches, 256, name="num_patches", where=where)
    ah.assert_equal(sum(p.numel() for p in huge.parameters()), 753_920, name="parameters", where=where)


# ------------------------------------------------------------------------------------ patchify
@pytest.mark.smoke
@pytest.mark.needs(PF)
@pytest.mark.parametrize("dtype", DTYPES)
@given(shape_patch=image_shapes(), seed=ss.seeds())
@example(shape_patch=((2, 3, 4, 6), 2), seed=0)
@example(shape_patch=((1, 2, 6, 3), 3), seed=1)  # a tall grid (2 x 1): rows and columns cannot be swapped unseen
@example(shape_patch=((1, 1, 3, 4), 1), seed=2)  # P = 1: every pixel a patch
def test_patchify_matches_slicing(candidate, dtype, shape_patch, seed):
    """Oracle: patch i·gw + j is the image block at grid row i, column j, flattened (C, P, P)."""
    shape, patch = shape_patch
    images = ss.randn(shape, seed, dtype)
    expected = patches_by_slicing(images, patch)
    out = ah.call(candidate.vit.patchify, PF, images, patch)
    ah.assert_equal(out, expected, name="patches", where=ah.snippet(PF, images, patch))


@pytest.mark.needs(PF)
@given(shape_patch=image_shapes(), seed=ss.seeds())
@example(shape_patch=((2, 3, 4, 6), 2), seed=0)
def test_number_of_patches_is_hw_over_p_squared(candidate, shape_patch, seed):
    """(B, C, H, W) -> (B, H·W / P², C·P²)."""
    (B, C, H, W), patch = shape_patch
    images = ss.randn((B, C, H, W), seed)
    out = ah.call(candidate.vit.patchify, PF, images, patch)
    ah.assert_tensor(out, (B, H * W // patch**2, C * patch**2), name="patches", where=ah.snippet(PF, images, patch))


@pytest.mark.needs(PF, UF)
@given(shape_patch=image_shapes(), seed=ss.seeds())
@example(shape_patch=((2, 3, 4, 6), 2), seed=0)
def test_unpatchify_inverts_patchify(candidate, shape_patch, seed):
    (B, C, H, W), patch = shape_patch
    images = ss.randn((B, C, H, W), seed)
    patches = ah.call(candidate.vit.patchify, PF, images, patch)
    back = ah.call(candidate.vit.unpatchify, UF, patches, patch, H, W)
    ah.assert_equal(back, images, name="unpatchify(patchify(x))", where=ah.snippet(UF, patches, patch, H, W))


@pytest.mark.needs(PF, UF)
@given(shape_patch=image_shapes(), seed=ss.seeds())
@example(shape_patch=((2, 3, 4, 6), 2), seed=0)
@example(shape_patch=((1, 2, 6, 3), 3), seed=1)
def test_patchify_inverts_unpatchify(candidate, shape_patch, seed):
    """The other direction, from patches drawn directly (so unpatchify alone is checked against slicing)."""
    (B, C, H, W), patch = shape_patch
    patches = ss.randn((B, H * W // patch**2, C * patch**2), seed)
    images = ah.call(candidate.vit.unpatchify, UF, patches, patch, H, W)
    ah.assert_tensor(images, (B, C, H, W), name="images", where=ah.snippet(UF, patches, patch, H, W))
    ah.assert_equal(patches_by_slicing(images, patch), patches, name="patches of unpatchify(p)",
                    where=ah.snippet(UF, patches, patch, H, W))


@pytest.mark.needs(PF)
@pytest.mark.parametrize("dtype", DTYPES)
@given(shape_patch=image_shapes(), seed=ss.seeds(), embed_dim=ss.sizes(1, 8))
@example(shape_patch=((2, 3, 4, 6), 2), seed=0, embed_dim=4)
def test_patchify_times_weight_equals_conv2d(candidate, dtype, shape_patch, seed, embed_dim):
    """Linear patch embedding = Conv2d with kernel = stride = P: patchify(x) @ W.reshape(E, -1).T + b."""
    (B, C, H, W), patch = shape_patch
    images = ss.randn((B, C, H, W), seed, dtype)
    weight, bias = ss.randn((embed_dim, C, patch, patch), seed + 1, dtype), ss.randn((embed_dim,), seed + 2, dtype)
    expected = conv_embed(images.double(), weight.double(), bias.double(), patch)
    baseline = F.conv2d(images, weight, bias, stride=patch).flatten(2).transpose(1, 2)
    patches = ah.call(candidate.vit.patchify, PF, images, patch)
    out = patches @ weight.reshape(embed_dim, -1).T + bias
    # each output sums C·P² products and the bias, which may cancel: judged against the size of those terms
    terms = conv_embed(images.double().abs(), weight.double().abs(), bias.double().abs(), patch)
    ah.assert_close(out, expected, dtype=dtype, n=C * patch**2, baseline=baseline, scale=terms.max().item(),
                    name="patchify(x) @ W.T + b", where=ah.snippet(PF, images, patch))


# ---------------------------------------------------------------------------------------- PatchEmbed
@pytest.mark.needs(PE)
@pytest.mark.parametrize("dtype", DTYPES)
@given(shape_patch=image_shapes(), seed=ss.seeds(), embed_dim=ss.sizes(1, 8), as_pair=st.booleans())
@example(shape_patch=((2, 3, 4, 6), 2), seed=0, embed_dim=4, as_pair=True)
def test_patch_embed_equals_conv2d(candidate, dtype, shape_patch, seed, embed_dim, as_pair):
    """Oracle: F.conv2d in float64 with the module's weight (E, C, P, P) and bias, grid flattened row-major."""
    (B, C, H, W), patch = shape_patch
    img_size = (H, W) if as_pair or H != W else H
    module, weight, bias, where = make_embed(candidate, img_size, patch, C, embed_dim, dtype, seed)
    images = ss.randn((B, C, H, W), seed + 3, dtype)
    expected = conv_embed(images.double(), weight, bias, patch)
    baseline = F.conv2d(images, weight.to(dtype), bias.to(dtype), stride=patch).flatten(2).transpose(1, 2)
    out = module(images)
    terms = conv_embed(images.double().abs(), weight.abs(), bias.abs(), patch)  # a token may cancel (see above)
    ah.assert_close(out, expected, dtype=dtype, n=C * patch**2, baseline=baseline, scale=terms.max().item(),
                    name="tokens", where=where)
    ah.assert_equal(module.num_patches, H * W // patch**2, name="num_patches", where=where)
    ah.assert_equal(tuple(module.grid_size), (H // patch, W // patch), name="grid_size", where=where)


@pytest.mark.needs(PE)
def test_patch_embed_agrees_with_timm(candidate):
    """Trusted library: timm's PatchEmbed given the same weights gives the same tokens."""
    timm_layers = pytest.importorskip("timm.layers", reason="timm is not installed (pip install fmspec[timm])")
    for (H, W), patch, C, E, seed in [((32, 48), 8, 3, 16, 0), ((28, 28), 14, 1, 5, 1), ((16, 16), 4, 2, 7, 2)]:
        ours, weight, bias, where = make_embed(candidate, (H, W), patch, C, E, torch.float64, seed)
        theirs = timm_layers.PatchEmbed(img_size=(H, W), patch_size=patch, in_chans=C, embed_dim=E).double()
        with torch.no_grad():
            theirs.proj.weight.copy_(weight)
            theirs.proj.bias.copy_(bias)
        images = ss.randn((2, C, H, W), seed + 3)
        expected = theirs(images)
        ah.assert_close(ours(images), expected, n=C * patch**2, name="tokens vs timm", where=where)


# ----------------------------------------------------------------------------- size errors
def names(*arguments: str) -> str:
    """The pattern a size error's message must match: one of the arguments it concerns, as a word."""
    return "|".join(rf"\b{a}\b" for a in arguments)


@pytest.mark.needs(PF)
@pytest.mark.parametrize("hw", [(5, 4), (4, 6), (7, 7)], ids=["height", "width", "both"])
def test_patchify_non_divisible_size_raises(candidate, hw):
    """H or W not a multiple of P: ValueError naming the patch size (never patches of a cropped image)."""
    images = torch.zeros(1, 3, *hw)
    with pytest.raises(ValueError, match=names("patch")):
        candidate.vit.patchify(images, 4)


@pytest.mark.needs(UF)
@pytest.mark.parametrize("case", ["height", "wrong-count", "wrong-length"])
def test_unpatchify_inconsistent_sizes_raise(candidate, case):
    """A height not a multiple of P, a patch count that does not tile height x width, a patch length that is not
    C·P² for any C: ValueError naming the argument (height or patch; patches)."""
    patches = torch.zeros(1, 4, 3 * 4)  # 4 patches of P = 2, C = 3: an 4x4 image
    args, arguments = {"height": ((patches, 2, 5, 4), ("height", "patch")),
                       "wrong-count": ((patches, 2, 4, 8), ("patches",)),
                       "wrong-length": ((torch.zeros(1, 4, 3 * 4 + 1), 2, 4, 4), ("patches",))}[case]
    with pytest.raises(ValueError, match=names(*arguments)):
        candidate.vit.unpatchify(*args)


@pytest.mark.needs(PE)
def test_patch_embed_non_divisible_size_raises(candidate):
    """img_size not a multiple of the patch size: ValueError naming img_size or patch."""
    with pytest.raises(ValueError, match=names("img_size", "patch")):
        candidate.vit.PatchEmbed(225, 16, 3, 8)
    with pytest.raises(ValueError, match=names("img_size", "patch")):
        candidate.vit.PatchEmbed((224, 100), 16, 3, 8)


@pytest.mark.needs(PE)
def test_patch_embed_wrong_image_size_raises(candidate):
    """Images of another size or channel count than the module's: ValueError naming images."""
    module = candidate.vit.PatchEmbed(32, 8, 3, 4)
    with pytest.raises(ValueError, match=names("images")):
        module(torch.zeros(1, 3, 32, 40))
    with pytest.raises(ValueError, match=names("images")):
        module(torch.zeros(1, 2, 32, 32))


# ------------------------------------------------------------------------ position embeddings
grids = st.tuples(ss.sizes(1, 6), ss.sizes(1, 6))


@pytest.mark.needs(IP)
@given(grid=grids, n_prefix=st.integers(0, 2), dim=ss.sizes(1, 6), seed=ss.seeds())
@example(grid=(2, 3), n_prefix=1, dim=3, seed=0)
def test_interpolate_same_grid_is_identity(candidate, grid, n_prefix, dim, seed):
    pos = ss.randn((1, n_prefix + grid[0] * grid[1], dim), seed)
    out = ah.call(candidate.vit.interpolate_pos_embed, IP, pos, grid, grid, n_prefix=n_prefix)
    ah.assert_equal(out, pos, name="pos embed", where=ah.snippet(IP, pos, grid, grid, n_prefix=n_prefix))


@pytest.mark.needs(IP)
@given(old=grids, new=grids, n_prefix=st.integers(0, 2), dim=ss.sizes(1, 6), seed=ss.seeds())
@example(old=(2, 3), new=(4, 5), n_prefix=2, dim=3, seed=0)
def test_interpolate_keeps_prefix_tokens(candidate, old, new, n_prefix, dim, seed):
    """The class token (and any other prefix token) is copied as it is; the output has n_prefix + nh·nw tokens."""
    pos = ss.randn((1, n_prefix + old[0] * old[1], dim), seed)
    where = ah.snippet(IP, pos, old, new, n_prefix=n_prefix)
    out = ah.call(candidate.vit.interpolate_pos_embed, IP, pos, old, new, n_prefix=n_prefix)
    ah.assert_tensor(out, (1, n_prefix + new[0] * new[1], dim), torch.float64, name="pos embed", where=where)
    ah.assert_equal(out[:, :n_prefix], pos[:, :n_prefix], name="prefix tokens", where=where)


@pytest.mark.smoke
@pytest.mark.needs(IP)
@pytest.mark.parametrize("dtype", DTYPES)
@given(old=grids, new=grids, n_prefix=st.integers(0, 2), dim=ss.sizes(1, 6), batch=ss.sizes(1, 2), seed=ss.seeds())
@example(old=(2, 3), new=(4, 5), n_prefix=1, dim=3, batch=1, seed=0)
@example(old=(4, 3), new=(2, 5), n_prefix=2, dim=3, batch=2, seed=0)
@example(old=(1, 1), new=(2, 3), n_prefix=0, dim=2, batch=1, seed=0)  # one grid token: every output is it
@example(old=(6, 5), new=(2, 3), n_prefix=1, dim=2, batch=1, seed=1)  # down on both sides (no antialias)
@example(old=(2, 2), new=(6, 6), n_prefix=1, dim=1, batch=1, seed=2)  # up 3x: the edge samples repeated
def test_interpolate_matches_bicubic(candidate, dtype, old, new, n_prefix, dim, batch, seed):
    """Oracle: each channel's grid resized as an image, bicubic (a = -0.75), align_corners=False, no antialias."""
    pos = ss.randn((batch, n_prefix + old[0] * old[1], dim), seed, dtype)
    expected = resized_pos_embed(pos.double(), old, new, n_prefix)
    terms = resized_pos_embed(pos.double(), old, new, n_prefix, terms=True).max().item()
    out = ah.call(candidate.vit.interpolate_pos_embed, IP, pos, old, new, n_prefix=n_prefix)
    ah.assert_close(out, expected, dtype=dtype, n=16, scale=terms, name="pos embed",
                    where=ah.snippet(IP, pos, old, new, n_prefix=n_prefix))


@pytest.mark.needs(IP)
@given(old=grids, new=grids, dim=ss.sizes(1, 6), seed=ss.seeds())
@example(old=(2, 3), new=(4, 5), dim=3, seed=0)
def test_interpolate_constant_grid_stays_constant(candidate, old, new, dim, seed):
    """Interpolation weights sum to one: a grid where every token is the same vector stays so."""
    token = ss.randn((1, 1, dim), seed)
    pos = torch.cat([ss.randn((1, 1, dim), seed + 1), token.expand(1, old[0] * old[1], dim)], dim=1)
    out = ah.call(candidate.vit.interpolate_pos_embed, IP, pos, old, new)
    # weights summing to 1 with negative lobes: judged against the size of the weighted terms
    terms = resized_pos_embed(pos, old, new, 1, terms=True).max().item()
    ah.assert_close(out[:, 1:], token.expand(1, new[0] * new[1], dim), n=16, scale=terms, name="grid tokens",
                    where=ah.snippet(IP, pos, old, new))


@pytest.mark.needs(IP)
@given(old=grids, new=grids, dim=ss.sizes(1, 6), seed=ss.seeds())
@example(old=(2, 3), new=(4, 5), dim=3, seed=0)
def test_interpolate_commutes_with_transpose(candidate, old, new, dim, seed):
    """Resizing the transposed grid (rows <-> columns) gives the transpose of the resized grid."""
    pos = ss.randn((1, 1 + old[0] * old[1], dim), seed)
    grid_t = pos[:, 1:].reshape(1, old[0], old[1], dim).transpose(1, 2).reshape(1, -1, dim)
    pos_t = torch.cat([pos[:, :1], grid_t], dim=1)
    out = ah.call(candidate.vit.interpolate_pos_embed, IP, pos, old, new)
    out_t = ah.call(candidate.vit.interpolate_pos_embed, IP, pos_t, old[::-1], new[::-1])
    expected = out[:, 1:].reshape(1, new[0], new[1], dim).transpose(1, 2).reshape(1, -1, dim)
    terms = resized_pos_embed(pos, old, new, 1, terms=True).max().item()  # both sides are sums that may cancel
    ah.assert_close(out_t[:, 1:], expected, n=16, scale=terms, name="resized transpose",
                    where=ah.snippet(IP, pos_t, old[::-1], new[::-1]))


@pytest.mark.needs(IP)
@pytest.mark.parametrize("case", ["token-count", "bad-grid", "negative-prefix"])
def test_interpolate_bad_arguments_raise(candidate, case):
    """pos not holding n_prefix + gh·gw tokens, a grid side < 1, n_prefix < 0: ValueError (or TypeError) naming
    the argument."""
    pos = torch.zeros(1, 1 + 3 * 4, 8)
    args, kw, argument = {"token-count": ((pos, (4, 4), (6, 6)), {}, "pos"),
                          "bad-grid": ((pos, (3, 4), (0, 6)), {}, "new_grid"),
                          "negative-prefix": ((pos, (3, 4), (6, 6)), {"n_prefix": -1}, "n_prefix")}[case]
    with pytest.raises((ValueError, TypeError), match=names(argument)):
        candidate.vit.interpolate_pos_embed(*args, **kw)
