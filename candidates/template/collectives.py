"""collectives: ring AllReduce and the other collectives on point-to-point messages, and data-parallel
training (DDP). Spec: docs/spec/collectives.md."""
