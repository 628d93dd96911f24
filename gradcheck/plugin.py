"""pytest plugin for gradcheck (registered through the pytest11 entry point)."""
from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gradcheck")
    group.addoption(
        "--gradcheck-layer",
        action="append",
        default=[],
        metavar="MODULE:FACTORY",
        help="generate gradient-check tests for the layer made by this factory (repeatable)",
    )
