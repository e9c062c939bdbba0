"""gpt: LoRA's merge() adds B A without the alpha / r scaling (the merged model is another model)."""

import fmspec.reference.lora as ref
from fmspec.candidates.mutants import edited

COMPONENT = "gpt"
CAUGHT_BY = ["test_lora_merged_model_gives_the_same_loss"]

lora = edited(ref, ("            self.base.weight += self.delta_weight()\n",
                    "            self.base.weight += self.B @ self.A  # alpha / r forgotten\n"))
