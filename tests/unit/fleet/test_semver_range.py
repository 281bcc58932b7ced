import pytest

from ansible_collections.c5c3.gitops.plugins.module_utils.semver_range import (
    SemverRangeError,
    parse_range,
    satisfies,
    validate_range,
)


@pytest.mark.parametrize("text", [
    ">=0.1.0 <1.0.0", ">=0.30.0 <1.0.0", "2.x", "2.X", "2.*", "*", "~1.2", "~1.2.3", "~>1.2", "^1", "^0.2.3",
    "1.2.3", "v1.2.3", "=1.2.3", "!=1.2.3", ">1", "<=2.1", "=>1.0", "=<2.0", "1.2 - 1.4.5",
    ">= 1.2, < 3.0.0", ">=1.0,<2.0", "1.x || >=2.5.0", "^1.2 || ^2", "1.2.3-beta.1", "1.2.3+build.5",
])
def test_valid_ranges_parse(text):
    assert validate_range(text) == text


@pytest.mark.parametrize("text", [
    "", "   ", "latest", "1.2.3.4", ">>1.0", ">=1.0 ||", "|| 1.0", "1.0 <", ">=1.0.0<2.0.0", "01.2.3",
    "1.2.3-", "a.b.c", ">=x.y", None, 1.0,
])
def test_invalid_ranges_are_refused(text):
    with pytest.raises(SemverRangeError):
        parse_range(text)


@pytest.mark.parametrize("version,text,expected", [
    ("0.1.0", ">=0.1.0 <1.0.0", True),
    ("0.9.9", ">=0.1.0 <1.0.0", True),
    ("1.0.0", ">=0.1.0 <1.0.0", False),
    ("0.0.9", ">=0.1.0 <1.0.0", False),
    ("2.7.1", "2.x", True),
    ("3.0.0", "2.x", False),
    ("1.2.9", "~1.2", True),
    ("1.3.0", "~1.2", False),
    ("1.9.0", "~1", True),
    ("1.9.0", "^1", True),
    ("2.0.0", "^1", False),
    ("0.2.9", "^0.2.3", True),
    ("0.3.0", "^0.2.3", False),
    ("1.2.3", "1.2.3", True),
    ("1.2.4", "1.2.3", False),
    ("1.2.4", "!=1.2.3", True),
    ("1.4.5", "1.2 - 1.4.5", True),
    ("1.4.6", "1.2 - 1.4.5", False),
    ("2.1.9", "<=2.1", True),
    ("2.2.0", "<=2.1", False),
    ("2.0.0", ">1", True),
    ("1.9.9", ">1", False),
    ("2.6.0", "1.x || >=2.5.0", True),
    ("2.4.0", "1.x || >=2.5.0", False),
    ("1.0.0-rc.1", ">=0.1.0", False),
])
def test_satisfies(version, text, expected):
    assert satisfies(version, text) is expected
