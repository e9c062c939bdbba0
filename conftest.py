"""The checkout's root conftest: loads the fmspec plugin where pytest's plugin autoloading is off
(``PYTEST_DISABLE_PLUGIN_AUTOLOAD``). Installed (editable or from a wheel), the ``pytest11`` entry point
registers the same module under the same name, so it is never loaded twice."""

pytest_plugins = ["fmspec.plugin"]
