from fmspec.candidates.mutants import markdown

print(markdown(), end="")
