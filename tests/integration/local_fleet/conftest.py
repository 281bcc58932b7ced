"""Fixtures of the local fleet / Flux simulator tests."""
from __future__ import annotations

import pytest

from lf_helpers import Hub


@pytest.fixture
def hub(local_fleet):
    h = Hub(local_fleet)
    yield h
    # the test namespace stays (no namespace controller runs locally); the fleet goes at session end
    h.api.close()
    h.spoke_api.close()
