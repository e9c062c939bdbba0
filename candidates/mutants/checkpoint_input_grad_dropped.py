"""checkpoint: the recomputation starts from a detached input, so no gradient flows back to x."""

import torch

import fmspec.reference.checkpoint as ref
from fmspec.candidates.mutants import patch

COMPONENT = "checkpoint"
CAUGHT_BY = ["test_gradients_match_no_checkpointing"]
CAUGHT_BY_GPU = ["test_cuda_dropout_masks_replayed"]


class _Segment(ref._Segment):
    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        need_params = ctx.needs_input_grad[2:]
        x = x.detach()  # bug: the input's gradient is never asked for
        with ref._replay(ctx.rng, x), torch.enable_grad():
            y = ctx.run(x)
        inputs = [p for p, need in zip(ctx.params, need_params) if need]
        grads = iter(torch.autograd.grad(y, inputs, grad_out, allow_unused=True))
        return (None, None, *(next(grads) if need else None for need in need_params))


def checkpoint_sequential(blocks, x, segments):
    blocks = list(blocks)
    bounds = ref._check_segments(segments, len(blocks))
    for start, end in zip(bounds, bounds[1:] + [len(blocks)]):
        def run(z, seg=blocks[start:end]):
            for block in seg:
                z = block(z)
            return z

        x = _Segment.apply(run, x, *[p for b in blocks[start:end] for p in b.parameters() if p.requires_grad])
    return x


checkpoint = patch(ref, checkpoint_sequential=checkpoint_sequential)
