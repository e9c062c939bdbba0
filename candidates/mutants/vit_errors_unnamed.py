"""vit: size errors say what is wrong ("image size 5x4 is not a multiple of 4", "got 13 tokens") without naming the argument."""

import fmspec.reference.vit as ref
from fmspec.candidates.mutants import edited

COMPONENT = "vit"
CAUGHT_BY = ["test_patchify_non_divisible_size_raises", "test_unpatchify_inconsistent_sizes_raise",
             "test_patch_embed_non_divisible_size_raises", "test_patch_embed_wrong_image_size_raises",
             "test_interpolate_bad_arguments_raise"]

vit = edited(
    ref,
    ('raise ValueError(f"image size {height}x{width} is not divisible by patch={patch}")',
     'raise ValueError(f"image size {height}x{width} is not a multiple of {patch}")'),
    ('raise ValueError(f"patches holds N={N} patches, but a {height}x{width} image has {gh * gw} of size {patch}")',
     'raise ValueError(f"got {N} rows, expected {gh * gw}")'),
    ('raise ValueError(f"patches: patch length {D} is not C*{patch}*{patch} for any channel count C")',
     'raise ValueError(f"length {D} is not C*{patch}*{patch} for any channel count C")'),
    ('raise ValueError(f"images must have shape (B, {self.in_chans}',
     'raise ValueError(f"expected shape (B, {self.in_chans}'),
    ('raise ValueError(f"pos holds {N} tokens, expected n_prefix + {gh}*{gw} = {n_prefix + gh * gw} for old_grid")',
     'raise ValueError(f"got {N} tokens, expected {n_prefix + gh * gw}")'),
    ('raise ValueError(f"n_prefix must be an int >= 0, got {n_prefix!r}")',
     'raise ValueError(f"prefix length must be an int >= 0, got {n_prefix!r}")'),
    ("_check_int(grid[0], name)", '_check_int(grid[0], "size")'),
)
