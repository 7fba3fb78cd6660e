"""One place that turns domain errors into HTTP answers, so no input reaches a 500."""

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.views import exception_handler as drf_exception_handler

from controlplane.api.base import DomainSerializer
from controlplane.errors import Conflict, describe


class ConflictError(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


def _messages(detail, where: str = "") -> list[str]:
    """Nested errors (a list item's, a nested object's) as flat messages that say where."""
    if isinstance(detail, dict):
        return [m for key, value in detail.items() for m in _messages(value, f"{where}{key}: ")]
    if isinstance(detail, list):
        return [m for item in detail for m in _messages(item, where)]
    return [f"{where}{detail}"]


def _flatten(detail):
    if isinstance(detail, dict):
        return {field: _messages(value) if isinstance(value, dict | list) else value for field, value in detail.items()}
    return detail


def exception_handler(exc, context):
    if isinstance(exc, Conflict):
        exc = ConflictError(str(exc))
    elif isinstance(exc, IntegrityError):
        # A database constraint caught what validation could not see: a concurrent change.
        exc = ConflictError("the change conflicts with another one made at the same time; reload and retry.")
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge("the request body is too large.")
    elif isinstance(exc, DjangoValidationError):
        # A model rule, from a save or a domain operation: named in the resource's own field names.
        serializer_class = getattr(context.get("view"), "get_serializer_class", lambda: None)()
        if isinstance(serializer_class, type) and issubclass(serializer_class, DomainSerializer):
            exc = ValidationError(serializer_class().api_errors(exc))
        else:
            exc = ValidationError({"nonFieldErrors": [describe(exc)]})
    if isinstance(exc, ValidationError):
        # Every 400 has one shape: {field: [messages]}, a list item's errors as "0: ..." under its field.
        exc.detail = _flatten(exc.detail)
    return drf_exception_handler(exc, context)
