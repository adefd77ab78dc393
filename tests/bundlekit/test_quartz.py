"""Tests for the offline Quartz cron validator (rules of the Quartz CronTrigger tutorial)."""

from __future__ import annotations

import pytest

from bundlekit.quartz import QUARTZ_FIELDS, is_valid_quartz_cron, quartz_cron_problems

VALID = [
    "0 0 2 * * ?",
    "0 0 3 ? * SUN",
    "0 0/15 * * * ?",
    "0 30 10-13 ? * WED,FRI",
    "0 0 12 L * ?",
    "0 0 12 15W * ?",
    "0 0 12 ? * 6#3",
    "0 0 12 ? * 6L",
    "0 0 12 ? JAN-MAR MON-FRI 2027",
    "0 0 12 LW * ?",
    "0 0 12 L-3 * ?",
    "0 15 10 ? * MON-FRI",
    # More forms from the tutorial and its edge cases.
    "0 0 12 * * ?",
    "0 15 10 ? * *",
    "0 15 10 * * ? 2005",
    "0 * 14 * * ?",
    "0 0/5 14,18 * * ?",
    "0 0-5 14 * * ?",
    "0 10,44 14 ? 3 WED",
    "0 15 10 ? * 6L 2002-2005",
    "0 11 11 11 11 ?",
    "0 0 12 1/5 * ?",
    "*/5 * * * * ?",
    "10-30/5 * * * * ?",
    "0 0 22-2 * * ?",  # wrap-around range
    "0 0 8 ? * FRI-MON",  # wrap-around names
    "0 0 8 ? NOV-FEB *",
    "0 0 8 ? jan-mar mon-fri",  # names are case-insensitive
    "0 0 12 l * ?",
    "0 0 12 ? * fril",
    "0 0 12 ? * FRI#2",
    "0 0 12 ? * L",
    "0 0 12 ? JUL,AUG SAT",
    "0 0 12 1W * ?",
    "0 0 12 31W * ?",
    "0 0 12 L-30 * ?",
    "0 0 12 ? * 1#5",
    "59 59 23 31 12 ? 2099",
    "0 0 0 1 1 ? 1970",
    "0/59 0/59 0/23 1/31 1/12 ? 1970/130",
    "0 0 12 * * ? *",
    "  0  0   2 * *\t?  ",  # any whitespace separates fields
]


@pytest.mark.parametrize("expression", VALID)
def test_valid_expressions(expression: str) -> None:
    assert quartz_cron_problems(expression) == []
    assert is_valid_quartz_cron(expression)


# (expression, key words that must all appear in one of the problems)
INVALID = [
    # Field count.
    ("", ["empty", "6 or 7"]),
    ("   ", ["empty"]),
    (
        "0 2 * * *",
        ["found 5 fields", "seconds minutes hours", "Unix", "seconds field first", "'?'", "'0 0 2 * * ?'"],
    ),
    ("30 2 * * 1-5", ["found 5 fields", "Unix", "'0 30 2 ? * <day-of-week>'", "1=SUN"]),
    ("0 0 2 * * ? 2027 x", ["found 8 fields", "6 or 7"]),
    ("0 0 2", ["found 3 fields"]),
    # Out of range values.
    ("0 0 24 * * ?", ["field 3 (hours): 24 is out of range 0-23"]),
    ("60 0 0 * * ?", ["field 1 (seconds): 60 is out of range 0-59"]),
    ("0 60 0 * * ?", ["field 2 (minutes): 60 is out of range 0-59"]),
    ("0 0 2 32 * ?", ["field 4 (day-of-month): 32 is out of range 1-31"]),
    ("0 0 2 0 * ?", ["field 4 (day-of-month): 0 is out of range 1-31"]),
    ("0 0 2 ? * 8", ["field 6 (day-of-week): 8 is out of range 1-7"]),
    ("0 0 2 ? * 0", ["field 6 (day-of-week): 0 is out of range 1-7"]),
    ("0 0 2 ? 13 *", ["field 5 (month): 13 is out of range 1-12"]),
    ("0 0 2 * * ? 1900", ["field 7 (year): 1900 is out of range 1970-2099"]),
    ("0 0 2 * * ? 2100", ["field 7 (year): 2100 is out of range 1970-2099"]),
    ("0 0 20-25 * * ?", ["field 3 (hours): 25 is out of range 0-23"]),
    ("0 0 2 ? * MON-9", ["field 6 (day-of-week): 9 is out of range 1-7"]),
    # day-of-month / day-of-week exclusivity.
    ("0 0 2 * * *", ["both set", "use '?' in one of day-of-month/day-of-week"]),
    ("0 0 2 15 * MON", ["both set", "use '?' in one of day-of-month/day-of-week"]),
    ("0 0 2 ? * ?", ["both '?'", "exactly one"]),
    # '?' placement.
    ("0 0 ? * * ?", ["field 3 (hours)", "'?' is only allowed in day-of-month or day-of-week"]),
    ("? 0 2 * * ?", ["field 1 (seconds)", "'?' is only allowed"]),
    ("0 0 2 ?,1 * MON", ["field 4 (day-of-month)", "'?' must be the whole field"]),
    ("0 0 2 * * ?/2", ["field 6 (day-of-week)", "'?' must stand alone"]),
    # Steps.
    ("0 0/0 * * * ?", ["field 2 (minutes)", "step must be a positive integer, got 0"]),
    ("0/60 0 * * * ?", ["field 1 (seconds)", "step 60 is larger than 59"]),
    ("0 0 0/24 * * ?", ["field 3 (hours)", "step 24 is larger than 23"]),
    ("0 0 2 1/32 * ?", ["field 4 (day-of-month)", "step 32 is larger than 31"]),
    ("0 0 2 ? */13 *", ["field 5 (month)", "step 13 is larger than 12"]),
    ("0 0 2 ? * */8", ["field 6 (day-of-week)", "step 8 is larger than 7"]),
    ("0 0 2 * * ? 2020/131", ["field 7 (year)", "step 131 is larger than 130"]),
    ("0 */ * * * ?", ["field 2 (minutes)", "missing step"]),
    ("0 */a * * * ?", ["field 2 (minutes)", "not a positive integer"]),
    ("0 /5 * * * ?", ["field 2 (minutes)", "needs a start"]),
    ("0 0/5/2 * * * ?", ["field 2 (minutes)", "more than one '/'"]),
    # Names.
    ("0 0 2 ? * FUNDAY", ["field 6 (day-of-week)", "unknown name 'FUNDAY'", "SUN-SAT"]),
    ("0 0 2 ? JANUARY *", ["field 5 (month)", "unknown name 'JANUARY'", "JAN-DEC"]),
    ("0 0 MON * * ?", ["field 3 (hours)", "not a number", "names are only allowed"]),
    ("0 0 2 MON * ?", ["field 4 (day-of-month)", "not a number"]),
    # Lists and ranges.
    ("0 0 2,,3 * * ?", ["field 3 (hours)", "empty item"]),
    ("0 0 2, * * ?", ["field 3 (hours)", "empty item"]),
    ("0 0 1-2-3 * * ?", ["field 3 (hours)", "invalid range"]),
    ("0 0 -5 * * ?", ["field 3 (hours)", "invalid range"]),
    ("0 0 *-5 * * ?", ["field 3 (hours)", "'*' must stand alone"]),
    # day-of-month specials.
    ("0 0 12 15W,20 * ?", ["field 4 (day-of-month)", "cannot be combined with other items in a list"]),
    ("0 0 12 L,15 * ?", ["field 4 (day-of-month)", "cannot be combined"]),
    ("0 0 12 1-15W * ?", ["field 4 (day-of-month)", "single day", "not a range"]),
    ("0 0 12 32W * ?", ["field 4 (day-of-month)", "day 32", "out of range 1-31"]),
    ("0 0 12 0W * ?", ["field 4 (day-of-month)", "out of range 1-31"]),
    ("0 0 12 L-31 * ?", ["field 4 (day-of-month)", "offset 31", "out of range 1-30"]),
    ("0 0 12 L-0 * ?", ["field 4 (day-of-month)", "out of range 1-30"]),
    ("0 0 12 L- * ?", ["field 4 (day-of-month)", "'L-n'"]),
    ("0 0 12 6L * ?", ["field 4 (day-of-month)", "day-of-week form"]),
    ("0 0 12 L/2 * ?", ["field 4 (day-of-month)", "day-of-month accepts"]),
    ("0 0 12 6#3 * ?", ["field 4 (day-of-month)", "'#' is only allowed in day-of-week"]),
    # day-of-week specials.
    ("0 0 12 ? * 6#6", ["field 6 (day-of-week)", "6#6", "out of range 1-5"]),
    ("0 0 12 ? * 6#0", ["field 6 (day-of-week)", "out of range 1-5"]),
    ("0 0 12 ? * 8#2", ["field 6 (day-of-week)", "8 is out of range 1-7"]),
    ("0 0 12 ? * 6#", ["field 6 (day-of-week)", "expected n#k"]),
    ("0 0 12 ? * 6#x", ["field 6 (day-of-week)", "k in n#k"]),
    ("0 0 12 ? * 2-6#2", ["field 6 (day-of-week)", "single day"]),
    ("0 0 12 ? * 6#3,2", ["field 6 (day-of-week)", "cannot be combined"]),
    ("0 0 12 ? * 6L,MON", ["field 6 (day-of-week)", "cannot be combined"]),
    ("0 0 12 ? * 8L", ["field 6 (day-of-week)", "8 is out of range 1-7"]),
    ("0 0 12 ? * FUNL", ["field 6 (day-of-week)", "unknown name 'FUN'"]),
    ("0 0 12 ? * 2-6L", ["field 6 (day-of-week)", "not a range"]),
    ("0 0 12 ? * LL", ["field 6 (day-of-week)", "day-of-week accepts"]),
    ("0 0 12 ? * 5W", ["field 6 (day-of-week)", "'W' is only allowed in day-of-month"]),
    # 'L' / 'W' outside the day fields.
    ("0 0 L * * ?", ["field 3 (hours)", "'L' and 'W' are only allowed"]),
    ("0 0 12 * L ?", ["field 5 (month)", "'L' and 'W' are only allowed"]),
    ("0 5W 12 * * ?", ["field 2 (minutes)", "'L' and 'W' are only allowed"]),
    # Stray characters.
    ("0 0 2 * * ? x!", ["field 7 (year)", "unexpected character", "'!'"]),
    ("0 0 2 * * ? 2027!", ["field 7 (year)", "unexpected character", "'!'"]),
    ("0 0 2.5 * * ?", ["field 3 (hours)", "unexpected character", "'.'"]),
    ("0 0 2 * * ? x", ["field 7 (year)", "'X' is not a number"]),
    ("0 0 2 * * ;", ["field 6 (day-of-week)", "unexpected character"]),
    ("0 0 2 * * \u00e9", ["field 6 (day-of-week)", "unexpected character"]),
]


@pytest.mark.parametrize(("expression", "key_words"), INVALID, ids=[repr(e) for e, _ in INVALID])
def test_invalid_expressions(expression: str, key_words: list[str]) -> None:
    problems = quartz_cron_problems(expression)
    assert problems, f"{expression!r} should be invalid"
    assert not is_valid_quartz_cron(expression)
    assert any(all(word in problem for word in key_words) for problem in problems), problems


@pytest.mark.parametrize("value", [None, 0, 1.5, ["0", "0", "2", "*", "*", "?"], b"0 0 2 * * ?"])
def test_non_string_is_a_problem_not_an_exception(value: object) -> None:
    problems = quartz_cron_problems(value)  # type: ignore[arg-type]
    assert len(problems) == 1 and "must be a string" in problems[0]
    assert not is_valid_quartz_cron(value)  # type: ignore[arg-type]


def test_problems_name_their_field() -> None:
    problems = quartz_cron_problems("60 60 24 ? * FUNDAY 1900")
    assert [p.split(":")[0] for p in problems] == [
        "field 1 (seconds)",
        "field 2 (minutes)",
        "field 3 (hours)",
        "field 6 (day-of-week)",
        "field 7 (year)",
    ]


def test_every_problem_is_reported_once() -> None:
    problems = quartz_cron_problems("0 0 ?,? * * ?")
    assert problems.count("field 3 (hours): '?' is only allowed in day-of-month or day-of-week") == 1


def test_wrong_field_count_shows_layout() -> None:
    (problem,) = quartz_cron_problems("0 0 2 * * ? 2027 1 2")
    assert "found 9 fields" in problem
    assert "seconds minutes hours day-of-month month day-of-week [year]" in problem


def test_quartz_fields() -> None:
    assert QUARTZ_FIELDS == (
        ("seconds", 0, 59),
        ("minutes", 0, 59),
        ("hours", 0, 23),
        ("day-of-month", 1, 31),
        ("month", 1, 12),
        ("day-of-week", 1, 7),
        ("year", 1970, 2099),
    )


def test_docstrings_cite_the_quartz_tutorial() -> None:
    from bundlekit import quartz

    url = "quartz-scheduler.org/documentation/quartz-2.3.0/tutorials/crontrigger.html"
    for obj in (quartz, quartz.quartz_cron_problems, quartz.is_valid_quartz_cron):
        assert url in (obj.__doc__ or "")
