"""The API's one JSON parser: strict JSON, refused with a 400 before any view sees it.

- Nesting deeper than `MAX_DEPTH` levels is refused by a linear scan of the text before parsing, so a
  body of ten thousand `[` costs one pass and never reaches the recursive decoder.
- A key given twice in one object is refused, naming it: JSON leaves duplicates undefined, and parsers
  disagree on which one wins.
- Bodies in another charset than UTF-8 are refused (415), as RFC 8259 asks.
- Text with a lone UTF-16 surrogate (`"\\ud800"`) is refused, naming where it is: it is not Unicode,
  no database stores it and no response can encode it. The error never echoes the text itself.
- Numbers beyond a float's range (`1e400`) are refused rather than read as infinity.
"""

import codecs
import math
import re

from django.conf import settings
from rest_framework.exceptions import ParseError, UnsupportedMediaType, ValidationError
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.utils import json

MAX_DEPTH = 32
DEPTH_MESSAGE = f"JSON nesting deeper than {MAX_DEPTH} levels."
DUPLICATE_MESSAGE = "appears more than once in the object; each key may appear once."
SURROGATE_MESSAGE = "contains a lone surrogate; text must be valid Unicode."
SURROGATE_KEY_MESSAGE = "is a key with a lone surrogate; text must be valid Unicode."

# A string literal (escapes included), or one bracket. Brackets inside strings are skipped with the string.
# An unterminated string runs to the end of the text (the parser refuses it later): each quote is read
# once, so the scan is linear.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\Z)|[\[\]{}]', re.DOTALL)
# Where a JSON escape can produce a surrogate code point: \uD800-\uDFFF.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def nesting_depth_exceeds(text: str, limit: int = MAX_DEPTH) -> bool:
    """True when `text` opens more than `limit` arrays or objects inside one another (no recursion)."""
    depth = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > limit:
                return True
        elif token in "]}":
            depth -= 1
    return False


def has_surrogate(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def printable(text: str) -> str:
    """`text` with any lone surrogate written as its escape (`\\ud800`), so it can be shown and encoded."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8") if has_surrogate(text) else text


class _Object(dict):
    """An object with keys given more than once (the decoder keeps the last value; the walk refuses it)."""

    duplicates: list[str]


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _path(parent: str, step) -> str:
    return f"{parent}.{step}" if parent else str(step)


def _problems(value, path: str, errors: dict[str, list[str]]) -> object:
    """Record duplicate keys and lone surrogates under their dotted path; return `value` with plain dicts.
    Recursion is safe: the depth was bounded before parsing."""
    if isinstance(value, str):
        if has_surrogate(value):
            errors.setdefault(path or settings.REST_FRAMEWORK["NON_FIELD_ERRORS_KEY"], []).append(SURROGATE_MESSAGE)
        return value
    if isinstance(value, list):
        return [_problems(item, _path(path, i), errors) for i, item in enumerate(value)]
    if isinstance(value, dict):
        for key in dict.fromkeys(getattr(value, "duplicates", ())):
            errors.setdefault(_path(path, printable(key)), []).append(DUPLICATE_MESSAGE)
        result = {}
        for key, item in value.items():
            if has_surrogate(key):
                errors.setdefault(_path(path, printable(key)), []).append(SURROGATE_KEY_MESSAGE)
            result[key] = _problems(item, _path(path, printable(key)), errors)
        return result
    return value


def loads(text: str):
    """Strict JSON text to Python: ParseError for malformed or too deep text, ValidationError naming each
    duplicate key and each string with a lone surrogate by its dotted path (`environments.0`)."""
    if nesting_depth_exceeds(text):
        raise ParseError(DEPTH_MESSAGE)
    flagged: list[_Object] = []

    def pairs(items):
        obj = dict(items)
        if len(obj) == len(items):
            return obj
        seen: set[str] = set()
        obj = _Object(obj)
        obj.duplicates = [key for key, _ in items if key in seen or seen.add(key)]
        flagged.append(obj)
        return obj

    try:
        data = json.loads(text, object_pairs_hook=pairs, parse_float=_finite_float)
    except RecursionError:  # unreachable after the depth check; kept so that no input can reach a 500
        raise ParseError(DEPTH_MESSAGE) from None
    except ValueError as exc:
        raise ParseError(f"JSON parse error - {exc}") from None
    if not flagged and not _SURROGATE_ESCAPE.search(text) and not has_surrogate(text):
        return data  # the common case: nothing to look for, no walk
    errors: dict[str, list[str]] = {}
    data = _problems(data, "", errors)
    if errors:
        raise ValidationError(errors)
    return data


class StrictJSONParser(JSONParser):
    """`application/json` for every endpoint (REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"])."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})
        # JSON is UTF-8 (RFC 8259); another charset (utf-7, say) could smuggle in what UTF-8 cannot carry.
        try:
            utf8 = codecs.lookup(encoding).name == "utf-8"
        except LookupError:
            utf8 = False
        if not utf8:
            raise UnsupportedMediaType(media_type, detail="JSON bodies are UTF-8: send charset=utf-8 or no charset.")
        try:
            text = stream.read().decode(encoding) if stream is not None else ""
        except UnicodeError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        return loads(text)
