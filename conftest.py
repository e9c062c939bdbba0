# The fmspec plugin, for runs from a checkout. An installed fmspec registers the same module through its
# pytest11 entry point under the same name, so it is never loaded twice.
pytest_plugins = ["suites.plugin"]
