"""Whole numbers in query parameters and headers (page sizes, stream resume points): ASCII digits only,
within a stated range, or a 400 naming the parameter and the range."""

import re

from django.http import JsonResponse
from rest_framework.exceptions import ValidationError

BIGINT_MAX = 2**63 - 1  # the largest id a database's bigint holds
_DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII only: str.isdigit() and int() also take superscript and full-width digits


def whole_number(raw: str, name: str, low: int, high: int) -> int:
    """`raw` as an int in [low, high]; anything else (signs, spaces, decimals, exponents, other scripts'
    digits, an empty value) is ValidationError({name: ["must be a whole number from low to high."]})."""
    if _DIGITS.fullmatch(raw):
        value = int(raw)
        if low <= value <= high:
            return value
    raise ValidationError({name: [f"must be a whole number from {low} to {high}."]})


def resume_point(request, default: int) -> int:
    """Where a Server-Sent Events stream resumes: after the id in `Last-Event-ID` (what a reconnecting
    EventSource sends) or `?after=`; `default` when neither is given. The header wins when both are."""
    given = {"Last-Event-ID": request.headers.get("Last-Event-ID", ""), "after": request.GET.get("after", "")}
    # Both are checked when both are sent; an empty one counts as not sent.
    points = [whole_number(value, name, 0, BIGINT_MAX) for name, value in given.items() if value]
    return points[0] if points else default


def resume_point_refusal(request) -> JsonResponse | None:
    """For plain Django views (the streams): a 400 naming the malformed resume point, or None. Checked
    before a stream starts, since a generator's error would come after its 200."""
    try:
        resume_point(request, 0)
    except ValidationError as exc:
        return JsonResponse(exc.detail, status=400)
    return None
