"""gpt: a small decoder-only GPT composed from the contract's components, trained end to end.
Spec: docs/spec/gpt.md."""
