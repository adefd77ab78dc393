"""Offline validation of Quartz cron expressions (Databricks ``schedule.quartz_cron_expression``).

Databricks job schedules use the Quartz ``CronTrigger`` syntax, documented in the Quartz CronTrigger
tutorial: http://www.quartz-scheduler.org/documentation/quartz-2.3.0/tutorials/crontrigger.html .
That tutorial is the source of the rules below; a bad expression is otherwise only rejected by the
Jobs API at deploy time. :func:`quartz_cron_problems` lists every problem it finds, each naming the
field, e.g. ``"field 3 (hours): 24 is out of range 0-23"``; it never raises.

Accepted syntax
---------------
An expression is 6 or 7 fields separated by whitespace::

    seconds minutes hours day-of-month month day-of-week [year]

=====  ============  ===========  ==============================
field  name          values       special items
=====  ============  ===========  ==============================
1      seconds       0-59
2      minutes       0-59
3      hours         0-23
4      day-of-month  1-31         ``?``  ``L``  ``L-n``  ``LW``  ``nW``
5      month         1-12         names ``JAN``-``DEC``
6      day-of-week   1-7          ``?``  ``L``  ``nL``  ``n#k``; names ``SUN``-``SAT`` (1 = SUN)
7      year          1970-2099    (optional field)
=====  ============  ===========  ==============================

* A field is a comma-separated list of items. An item is ``*``, a value, or a range ``a-b``, each
  optionally followed by ``/step`` (``*/5``, ``0/15``, ``10-30/5``). Values in the month and
  day-of-week fields may be names (case-insensitive), also as range ends (``MON-FRI``).
* Both ends of a range must be in the field's range; ``a > b`` is accepted (Quartz wraps around,
  e.g. ``FRI-MON`` or ``22-2``).
* A step is a positive integer no larger than the field's maximum (59 for seconds and minutes, 23
  for hours, 31 for day-of-month, 12 for month, 7 for day-of-week) or, for the year, than the
  number of years (130).
* ``?`` ("no specific value") is allowed only in day-of-month and day-of-week, and only as the
  whole field. Quartz does not support specifying both days: exactly one of day-of-month and
  day-of-week must be ``?`` (``* * ?`` style, never ``* * *``).
* Day-of-month: ``L`` (last day of the month), ``L-n`` (n days before the last day, n 1-30), ``LW``
  (last weekday of the month), ``nW`` (weekday nearest to day n, n 1-31; a single day, no range).
* Day-of-week: ``L`` (alone: 7, i.e. SAT), ``nL`` (last day n of the month, e.g. ``6L`` or
  ``FRIL``), ``n#k`` (k-th day n of the month, k 1-5, e.g. ``6#3``).
* ``L``, ``W`` and ``#`` items must stand alone: they cannot be combined with other items in a list,
  nor with a range or a step.

A 5-field Unix cron (``0 2 * * *``) is rejected with a hint: Quartz needs a seconds field first and
``?`` in day-of-month or day-of-week (``0 0 2 * * ?``).
"""

from __future__ import annotations

import re

__all__ = ["QUARTZ_FIELDS", "QUARTZ_TUTORIAL_URL", "is_valid_quartz_cron", "quartz_cron_problems"]

QUARTZ_TUTORIAL_URL = "http://www.quartz-scheduler.org/documentation/quartz-2.3.0/tutorials/crontrigger.html"

#: ``(name, min, max)`` of the 7 Quartz fields, in order; the year (last) is optional.
QUARTZ_FIELDS: tuple[tuple[str, int, int], ...] = (
    ("seconds", 0, 59),
    ("minutes", 0, 59),
    ("hours", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 1, 7),
    ("year", 1970, 2099),
)

_SECONDS, _MINUTES, _HOURS, _DOM, _MONTH, _DOW, _YEAR = range(7)

_MONTH_NAMES = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1
    )
}
_DOW_NAMES = {
    name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), start=1)
}
_NAMES = {_MONTH: (_MONTH_NAMES, "JAN-DEC"), _DOW: (_DOW_NAMES, "SUN-SAT")}

_LAYOUT = "seconds minutes hours day-of-month month day-of-week [year]"
# Anything outside these characters cannot appear in a Quartz expression.
_STRAY = re.compile(r"[^0-9A-Za-z,\-*/?#]")
# 'L' / 'W' forms, recognised outside day-of-month/day-of-week only to give a precise message.
_LW_FORM = re.compile(r"L|LW|L-\d*|\d+[LW]")


def _step_limit(index: int) -> int:
    """Largest step Quartz accepts for a field: its maximum, or the number of years for the year."""
    _, low, high = QUARTZ_FIELDS[index]
    return high if low <= 1 else high - low + 1


def _value_problems(index: int, text: str) -> list[str]:
    """Problems of one value (a number, or a name in the month/day-of-week fields), uppercased."""
    _, low, high = QUARTZ_FIELDS[index]
    if text.isdigit():
        number = int(text)
        if not low <= number <= high:
            return [f"{text} is out of range {low}-{high}"]
        return []
    if not text:
        return ["missing value"]
    if text == "*":
        return ["'*' must stand alone (optionally as '*/step'), not inside a range"]
    if index in _NAMES:
        names, name_range = _NAMES[index]
        if text in names:
            return []
        return [f"unknown name {text!r} (expected {name_range} or {low}-{high})"]
    if text.isalpha():
        return [f"{text!r} is not a number (names are only allowed in month and day-of-week)"]
    return [f"{text!r} is not a number in {low}-{high}"]


def _step_problems(index: int, step: str) -> list[str]:
    if not step:
        return ["missing step after '/'"]
    if not step.isdigit():
        return [f"step {step!r} is not a positive integer"]
    number, limit = int(step), _step_limit(index)
    if number == 0:
        return ["step must be a positive integer, got 0"]
    if number > limit:
        return [f"step {number} is larger than {limit}"]
    return []


def _plain_item_problems(index: int, item: str) -> list[str]:
    """Problems of ``*``, a value or a range, each optionally with ``/step``."""
    base, slash, step = item.partition("/")
    problems: list[str] = []
    if slash:
        if "/" in step:
            return [f"{item!r} has more than one '/'"]
        problems += _step_problems(index, step)
        if not base:
            problems.append(f"{item!r}: a step needs a start before '/' ('*', a value or a range)")
            return problems
    if base == "*":
        return problems
    if "-" in base:
        start, _, end = base.partition("-")
        if not start or not end or "-" in end:
            return problems + [f"invalid range {base!r} (expected a-b)"]
        return problems + _value_problems(index, start) + _value_problems(index, end)
    return problems + _value_problems(index, base)


def _dom_special_problems(item: str) -> list[str]:
    """Problems of a day-of-month item containing 'L' or 'W' (``L``, ``L-n``, ``LW``, ``nW``)."""
    if item in ("L", "LW"):
        return []
    if item.startswith("L-"):
        offset = item[2:]
        if not offset.isdigit():
            return [f"invalid {item!r}: 'L-n' needs a number n of days before the last day, 1-30"]
        if not 1 <= int(offset) <= 30:
            return [f"offset {offset} in {item!r} is out of range 1-30"]
        return []
    if item.endswith("W") and item.count("W") == 1 and "L" not in item:
        day = item[:-1]
        if "-" in day or "/" in day or "*" in day:
            return [f"invalid {item!r}: 'W' takes a single day (e.g. 15W), not a range, step or '*'"]
        if not day.isdigit():
            return [f"invalid {item!r}: 'nW' needs a day number 1-31"]
        if not 1 <= int(day) <= 31:
            return [f"day {day} in {item!r} is out of range 1-31"]
        return []
    if item.endswith("L") and item[:-1].isdigit():
        return [f"invalid {item!r}: 'nL' is a day-of-week form; day-of-month accepts L, L-n, LW or nW"]
    return [f"invalid {item!r}: day-of-month accepts 'L', 'L-n', 'LW' or 'nW' (e.g. L, L-3, LW, 15W)"]


def _dow_special_problems(item: str) -> list[str]:
    """Problems of a day-of-week item containing 'L' or '#' (``L``, ``nL``, ``n#k``)."""
    if item == "L":
        return []
    if "#" in item:
        day, _, nth = item.partition("#")
        if "#" in nth or not day or not nth:
            return [f"invalid {item!r}: expected n#k, e.g. 6#3 (third Friday)"]
        if "-" in day or "/" in day or "*" in day or "L" in day:
            return [f"invalid {item!r}: '#' takes a single day before it, not a range, step or '*'"]
        problems = _value_problems(_DOW, day)
        if not nth.isdigit():
            problems.append(f"invalid {item!r}: k in n#k must be a number 1-5")
        elif not 1 <= int(nth) <= 5:
            problems.append(f"{nth} in {item!r} is out of range 1-5 (k-th day of the month)")
        return problems
    if item.endswith("L") and item.count("L") == 1:
        day = item[:-1]
        if "-" in day or "/" in day or "*" in day:
            return [f"invalid {item!r}: 'L' takes a single day before it (e.g. 6L or FRIL), not a range"]
        return _value_problems(_DOW, day)
    return [f"invalid {item!r}: day-of-week accepts 'L', 'nL' or 'n#k' (e.g. L, 6L, 6#3)"]


def _special_problems(index: int, item: str) -> list[str] | None:
    """Problems of an ``L``/``W``/``#`` item, or None when the item is not one."""
    if "#" in item:
        if index != _DOW:
            return [f"'#' is only allowed in day-of-week (n#k), got {item!r}"]
        return _dow_special_problems(item)
    if index == _DOM and ("L" in item or "W" in item):
        return _dom_special_problems(item)
    if index == _DOW and "L" in item:  # no day name contains 'L'
        return _dow_special_problems(item)
    if index == _DOW and item.endswith("W") and item[:-1].isdigit():
        return [f"'W' is only allowed in day-of-month (nW), got {item!r}"]
    if index not in (_DOM, _DOW) and _LW_FORM.fullmatch(item):
        return [f"'L' and 'W' are only allowed in day-of-month or day-of-week, got {item!r}"]
    return None


def _field_problems(index: int, token: str) -> list[str]:
    """Problems of one field (without the ``field N (name):`` prefix)."""
    stray = "".join(dict.fromkeys(_STRAY.findall(token)))
    if stray:
        shown = ", ".join(repr(char) for char in stray)
        return [f"unexpected character(s) {shown} in {token!r}"]
    items = token.upper().split(",")
    if "" in items:
        return [f"empty item in list {token!r} (stray or doubled comma)"]
    in_list = len(items) > 1
    problems: list[str] = []
    for item in items:
        if "?" in item:
            if index not in (_DOM, _DOW):
                problems.append("'?' is only allowed in day-of-month or day-of-week")
            elif item != "?":
                problems.append(f"'?' must stand alone, got {item!r}")
            elif in_list:
                problems.append("'?' must be the whole field, not an item in a list")
            continue
        special = _special_problems(index, item)
        if special is None:
            problems += _plain_item_problems(index, item)
            continue
        problems += special
        if in_list and not special:
            problems.append(
                f"{item!r} cannot be combined with other items in a list ('L', 'W', '#' stand alone)"
            )
    # The same message for several items of a list (e.g. '?' twice) is reported once.
    return list(dict.fromkeys(problems))


def _field_count_problem(fields: list[str]) -> str:
    count = len(fields)
    problem = f"found {count} field{'s' if count != 1 else ''}, expected 6 or 7: {_LAYOUT}"
    if count == 5:
        minute, hour, dom, month, dow = fields
        problem += (
            "; this looks like a 5-field Unix cron: Quartz needs a seconds field first and '?' in "
            "day-of-month or day-of-week"
        )
        if dow == "*":
            problem += f", e.g. '0 {minute} {hour} {dom} {month} ?'"
        elif dom == "*":
            problem += (
                f", e.g. '0 {minute} {hour} ? {month} <day-of-week>' (Quartz numbers days of week 1-7 "
                "with 1=SUN, Unix cron 0-6 with 0=SUN)"
            )
        else:
            problem += ", e.g. '0 0 2 * * ?'"
    return problem


def quartz_cron_problems(expression: str) -> list[str]:
    """Return the problems of a Quartz cron expression; an empty list means it is valid.

    Implements the ``CronTrigger`` syntax of the Quartz CronTrigger tutorial
    (http://www.quartz-scheduler.org/documentation/quartz-2.3.0/tutorials/crontrigger.html), which
    Databricks uses for ``schedule.quartz_cron_expression``: 6 or 7 whitespace-separated fields
    ``seconds(0-59) minutes(0-59) hours(0-23) day-of-month(1-31) month(1-12|JAN-DEC)
    day-of-week(1-7|SUN-SAT, 1=SUN) [year(1970-2099)]``. Each field is a comma-separated list of
    ``*``, values or ranges ``a-b`` (wrap-around ``a > b`` accepted), each optionally with a
    positive ``/step`` no larger than the field's maximum; names are case-insensitive. ``?`` stands
    alone in exactly one of day-of-month and day-of-week. Day-of-month also accepts ``L``, ``L-n``
    (n 1-30), ``LW`` and ``nW`` (n 1-31); day-of-week accepts ``L``, ``nL`` and ``n#k`` (k 1-5). These
    special items cannot be part of a list, a range or a step. See the module docstring for details.

    Each problem names its field, e.g. ``"field 3 (hours): 24 is out of range 0-23"``. Anything that
    is not a string, an empty expression or stray characters yield problems; it never raises.
    """
    if not isinstance(expression, str):
        return [f"expression must be a string, got {type(expression).__name__}"]
    fields = expression.split()
    if not fields:
        return [f"expression is empty; expected 6 or 7 fields: {_LAYOUT}"]
    if len(fields) not in (6, 7):
        return [_field_count_problem(fields)]
    problems = [
        f"field {index + 1} ({QUARTZ_FIELDS[index][0]}): {problem}"
        for index, token in enumerate(fields)
        for problem in _field_problems(index, token)
    ]
    dom, dow = fields[_DOM], fields[_DOW]
    if ("?" in dom and dom != "?") or ("?" in dow and dow != "?"):
        return problems  # a misplaced '?' is already reported for its field
    if dom == "?" and dow == "?":
        problems.append(
            "fields 4 (day-of-month) and 6 (day-of-week) are both '?': exactly one of them must be '?' "
            "(e.g. '* * ?' or '? * MON')"
        )
    elif dom != "?" and dow != "?":
        problems.append(
            "fields 4 (day-of-month) and 6 (day-of-week) are both set: use '?' in one of "
            "day-of-month/day-of-week (Quartz does not support specifying both)"
        )
    return problems


def is_valid_quartz_cron(expression: str) -> bool:
    """True when :func:`quartz_cron_problems` finds no problem (Quartz CronTrigger syntax, see
    http://www.quartz-scheduler.org/documentation/quartz-2.3.0/tutorials/crontrigger.html)."""
    return not quartz_cron_problems(expression)
