"""Workflow parameters from `-p name=value`: converted by annotation, clear errors."""

from __future__ import annotations

from typing import Optional

import pytest

from planner.errors import ParameterError
from planner.params import convert_params, parse_assignments


def wf(n: int, rate: float = 0.5, name: str = "x", flag: bool = False,
       limit: int | None = None, legacy: Optional[float] = None, untyped=3):  # noqa: UP045
    pass


def test_conversion_by_annotation():
    raw = parse_assignments(["n=8", "rate=1.5", "name=a=b", "flag=yes", "limit=none",
                             "legacy=2", "untyped=7"])
    assert convert_params("wf", wf, raw) == {
        "n": 8, "rate": 1.5, "name": "a=b", "flag": True, "limit": None, "legacy": 2.0,
        "untyped": 7}


@pytest.mark.parametrize(("item", "message"), [
    ("n=eight", "parameter 'n' expects int, got 'eight'"),
    ("flag=maybe", "parameter 'flag' expects bool"),
    ("limit=x", "parameter 'limit' expects int"),
])
def test_bad_values(item, message):
    with pytest.raises(ParameterError, match=message):
        convert_params("wf", wf, parse_assignments(["n=1", item]))


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ParameterError, match=r"has no parameter 'm' .*n, rate, name"):
        convert_params("wf", wf, {"n": "1", "m": "2"})


def test_missing_required_parameter():
    with pytest.raises(ParameterError, match="needs parameter\\(s\\) n"):
        convert_params("wf", wf, {})


def test_assignment_without_equals():
    with pytest.raises(ParameterError, match="not of the form name=value"):
        parse_assignments(["n"])
