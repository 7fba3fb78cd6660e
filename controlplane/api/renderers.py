"""JSON out, through orjson: DRF's renderer spends most of a long list's rendering in the `json` module."""

import orjson
from rest_framework import renderers

# What orjson writes as it is and DRF escapes: line and paragraph separators, which break JavaScript strings.
_SEPARATORS = ((b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


class JSONRenderer(renderers.JSONRenderer):
    """DRF's JSONRenderer, with its compact output written by orjson. Times, decimals and the rest orjson does
    not write like DRF go to DRF's own encoder (`default`), so the text is DRF's; what orjson refuses (keys
    that are not strings, integers beyond 64 bits) falls back to DRF whole. An indented answer (a client's
    `; indent=` or the browsable API) is DRF's as before. Two differences: a float's exponent may be written
    1e-7 rather than 1e-07 (the same number), and NaN or an infinity, which DRF refuses (a 500), is null."""

    # Subclasses of str, int, dict and list are written as their base type, as `json` writes them.
    OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None or self.get_indent(accepted_media_type, renderer_context or {}) is not None:
            return super().render(data, accepted_media_type, renderer_context)
        try:
            body = orjson.dumps(data, default=self.encoder_class().default, option=self.OPTIONS)
        except orjson.JSONEncodeError:
            return super().render(data, accepted_media_type, renderer_context)
        for raw, escaped in _SEPARATORS:
            if raw in body:
                body = body.replace(raw, escaped)
        return body
