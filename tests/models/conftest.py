"""Fixtures of the model tests: every model test runs single-threaded (see ``one_torch_thread``)."""

from tests.helpers.training import one_torch_thread  # noqa: F401  (autouse, module scope)
