"""The strict number parsers: ASCII digits only, finite, in range, the same everywhere."""

from __future__ import annotations

import pytest

from hectl import parse

# Python's int()/float() take all of these; str.isdigit() is true for '²'.
NOT_PLAIN = ["1_0", "+1", " 1", "1 ", "١", "²", "1²", "-1", "0x1", "", "nan", "inf", "1e3", "1.0"]


@pytest.mark.parametrize("text", NOT_PLAIN)
def test_host_id_rejects_what_int_takes(text: str) -> None:
    with pytest.raises(ValueError, match="host id from 1 to 2000"):
        parse.host_id(text)


@pytest.mark.parametrize(("text", "value"), [("1", 1), ("01", 1), ("2000", 2000)])
def test_host_id(text: str, value: int) -> None:
    assert parse.host_id(text) == value


@pytest.mark.parametrize("text", ["0", "2001", "9" * 5000])
def test_host_id_range(text: str) -> None:
    with pytest.raises(ValueError, match="host id from 1 to 2000"):
        parse.host_id(text)


@pytest.mark.parametrize("text", [*NOT_PLAIN[:-2], "NaN", "-inf", "1.2.3", ".", "1e400", "٣.٥"])
def test_number_rejects_what_float_takes(text: str) -> None:
    with pytest.raises(ValueError, match="must be a number from 0 to 100"):
        parse.number(text, 0, 100)


@pytest.mark.parametrize(("text", "value"), [("1", 1.0), ("0.5", 0.5), (".5", 0.5), ("5.", 5.0), ("100", 100.0)])
def test_number(text: str, value: float) -> None:
    assert parse.number(text, 0, 100) == value


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), (" 2H ", 7200)]
)
def test_duration(text: str, seconds: float) -> None:
    assert parse.duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "abc", "10x", "5m3", "-5", "400d", "²", "²s", "1²m", "١m", "1_0s", "9" * 5000])
def test_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|between 1 second and 366 days"):
        parse.duration(text)
