"""The reference's training loop accepts the reference's own learning-rate schedule at every warmup."""

from __future__ import annotations

from dataclasses import replace

import fmspec.reference.gpt as gpt
from fmspec.suites import _gpt_helpers as gh


def test_training_accepts_a_warmup_whose_last_rate_rounds_above_max_lr():
    """max_lr (step + 1) / warmup at the warmup's last step is 3e-3 · 6 / 6 = 0.0030000000000000005 in
    floating point, one ulp above max_lr: the loop's range check allows that rounding."""
    assert gpt.lr_schedule(5, max_lr=3e-3, warmup=6, total=8) > 3e-3
    parts = gpt.Parts.reference()
    data = gh.debug_data(parts)
    cfg = replace(gh.SMALL, vocab_size=data.vocab_size)
    steps = []
    gpt.train(cfg, replace(gh.SMALL_TRAIN, steps=8, warmup=6, max_lr=3e-3), data, parts,
              on_step=lambda step, loss: steps.append(step))
    assert len(steps) == 8
