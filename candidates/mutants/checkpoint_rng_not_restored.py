"""checkpoint: the recomputation draws fresh dropout masks (random state not restored)."""

import torch

import fmspec.reference.checkpoint as ref
from fmspec.candidates.mutants import patch

COMPONENT = "checkpoint"
CAUGHT_BY = ["test_gradients_match_no_checkpointing", "test_parameter_gradients_without_input_grad"]
CAUGHT_BY_GPU = ["test_cuda_dropout_masks_replayed"]


class _Segment(ref._Segment):
    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        need_x, need_params = ctx.needs_input_grad[1], ctx.needs_input_grad[2:]
        x = x.detach().requires_grad_(need_x)
        with torch.enable_grad():
            y = ctx.run(x)  # bug: runs with whatever random state the backward pass finds
        inputs = ([x] if need_x else []) + [p for p, need in zip(ctx.params, need_params) if need]
        grads = iter(torch.autograd.grad(y, inputs, grad_out, allow_unused=True))
        grad_x = next(grads) if need_x else None
        return (None, grad_x, *(next(grads) if need else None for need in need_params))


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
