"""fmspec's reference implementation: one module per component, readable like the lectures.

Each module is also a component namespace of the ``reference`` candidate (``candidates/reference``).
"""
