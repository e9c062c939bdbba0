"""Example candidates: ``reference`` (must pass everything), ``template`` (a starting point for students),
and ``mutants`` (deliberately broken copies of the reference that the suite must catch)."""
