"""Fixtures of the fleet unit tests."""
import pytest

from fleet_helpers import load_catalog


@pytest.fixture
def catalog():
    return load_catalog()
