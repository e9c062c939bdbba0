from candidates.mutants import markdown

print(markdown(), end="")
