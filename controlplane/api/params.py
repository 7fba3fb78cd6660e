"""Query parameters and form fields, one check for all: every REST view, stream, preview and page form.

A parameter is given at most once (a repeated one would otherwise silently take its last value), is one the
endpoint takes when it says which it takes, and, over the API, is not empty nor whitespace alone (`?severity=`
is no filter, nor is `?actor=%20`, which a text filter reads stripped: saying so is better than reading it as
none; an HTML form sends its empty fields, so pages let them be).
Whole numbers (page sizes, stream resume points): ASCII digits only, within a stated range, or a 400 naming
the parameter and the range."""

import re
from collections.abc import Collection

from django.http import JsonResponse
from rest_framework.exceptions import ValidationError

BIGINT_MAX = 2**63 - 1  # the largest id a database's bigint holds
_DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII only: str.isdigit() and int() also take superscript and full-width digits
GIVEN_TWICE = "is given more than once."
EMPTY = "is empty: give a value, or leave the parameter out."
RESUME_HEADER, RESUME_QUERY = "Last-Event-ID", "after"


def refusals(
    data, takes: Collection[str] | None = None, where: str = "this endpoint", blank: bool = False
) -> dict[str, list[str]]:
    """What is wrong with `data` (a QueryDict: query parameters or form fields), by name: a name `takes` does not
    list (when it is given), a name given more than once, an empty (or whitespace) value unless `blank`. Empty
    when nothing is."""
    errors = {}
    for name, values in data.lists():
        if takes is not None and name not in takes:
            errors[name] = [f"is not a parameter of {where} (it takes {', '.join(takes) or 'none'})."]
        elif len(values) > 1:
            errors[name] = [GIVEN_TWICE]
        elif not blank and not values[0].strip():  # whitespace alone too: a text filter reads its value stripped
            errors[name] = [EMPTY]
    return errors


def checked(
    data, takes: Collection[str] | None = None, where: str = "this endpoint", blank: bool = False
) -> dict[str, str]:
    """`data` as a dict of single values, or ValidationError (a 400) naming what `refusals` found."""
    errors = refusals(data, takes, where, blank)
    if errors:
        raise ValidationError(errors)
    return data.dict()


def whole_number(raw: str, name: str, low: int, high: int) -> int:
    """`raw` as an int in [low, high]; anything else (signs, spaces, decimals, exponents, other scripts'
    digits, an empty value) is ValidationError({name: ["must be a whole number from low to high."]})."""
    if _DIGITS.fullmatch(raw):
        value = int(raw)
        if low <= value <= high:
            return value
    raise ValidationError({name: [f"must be a whole number from {low} to {high}."]})


def resume_point(request) -> tuple[str, int] | None:
    """Where a Server-Sent Events stream resumes, and which parameter said so: after the id in `Last-Event-ID`
    (what a reconnecting EventSource sends) or `?after=`; None when neither is given. The header wins when both
    are; both are checked. An empty header counts as not sent (an empty `?after=` is refused with the query)."""
    given = {RESUME_HEADER: request.headers.get(RESUME_HEADER, ""), RESUME_QUERY: request.GET.get(RESUME_QUERY, "")}
    points = [(name, whole_number(value, name, 0, BIGINT_MAX)) for name, value in given.items() if value]
    return points[0] if points else None


def stream_refusal(request, takes: Collection[str], where: str) -> JsonResponse | None:
    """For plain Django views (the streams): a 400 naming each parameter refused (see `refusals`) or a malformed
    resume point, or None. Checked before a stream starts, since a generator's error would come after its 200."""
    errors = refusals(request.GET, takes, where)
    if not errors:
        try:
            resume_point(request)
        except ValidationError as exc:
            errors = exc.detail
    return JsonResponse(errors, status=400) if errors else None
