"""collectives: DDP lists each module's own parameters (a tied weight once per module) and divides each listed gradient by N in place before a summing all-reduce: the tied weight is divided twice."""

import fmspec.reference.collectives as ref
from fmspec.candidates.mutants import edited

COMPONENT = "collectives"
CAUGHT_BY = ["test_ddp_tied_weights_averaged_once"]

collectives = edited(
    ref,
    ("params = [p for p in module.parameters() if p.requires_grad]",
     "params = [p for m in module.modules() for p in m.parameters(recurse=False) if p.requires_grad]"),
    ("        flat = torch.cat([p.grad.reshape(-1) for p in members])",
     "        for p in members:\n            p.grad /= self.comm.world_size  # pre-divide, then sum\n"
     "        flat = torch.cat([p.grad.reshape(-1) for p in members])"),
    ('self._thread.submit(all_reduce, self.comm, flat, "mean")', 'self._thread.submit(all_reduce, self.comm, flat, "sum")'),
)
