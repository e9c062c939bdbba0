"""finetune: bottleneck adapters and QLoRA. Spec: docs/spec/finetune.md."""
