"""One place that turns domain errors into HTTP answers, so no input reaches a 500."""

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.http import Http404
from rest_framework import status
from rest_framework.exceptions import APIException, ErrorDetail, NotFound, PermissionDenied, ValidationError
from rest_framework.views import exception_handler as drf_exception_handler

from controlplane.api.base import DomainSerializer
from controlplane.api.parsers import printable
from controlplane.errors import Conflict, describe, race_conflict
from controlplane.governance import Forbidden, PolicyDenied


class ConflictError(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class PolicyConflict(ConflictError):
    """A policy's refusal: the sentence, and the decision (who denied it, why, when it would next be allowed)."""

    def __init__(self, refusal: PolicyDenied):
        super().__init__()
        self.detail = {"detail": str(refusal), "decision": refusal.decision}


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


def _printable(detail):
    """Error bodies never carry text a response cannot encode (a lone surrogate is shown as its escape)."""
    if isinstance(detail, dict):
        return {printable(str(key)): _printable(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_printable(item) for item in detail]
    if isinstance(detail, ErrorDetail):
        return ErrorDetail(printable(detail), code=detail.code)
    return printable(detail) if isinstance(detail, str) else detail


def api_exception(exc: Exception, serializer_class=None) -> APIException | None:
    """`exc` as the API states it (its status and messages), or None for a bug. REST and GraphQL both ask
    here, so a rule broken through either says the same. A model rule is named in `serializer_class`'s
    field names when it is a DomainSerializer."""
    if isinstance(exc, PolicyDenied):
        # Its audit event is written once the transaction that refused it has ended (this is after it).
        exc.settle()
        exc = PolicyConflict(exc)
    elif isinstance(exc, Conflict):
        exc = ConflictError(str(exc))
    elif isinstance(exc, Forbidden):
        exc = PermissionDenied(str(exc))
    elif isinstance(exc, IntegrityError):
        # A database constraint caught what validation could not see: a concurrent change. Anything else is
        # a 500, logged by Django with its traceback.
        race = race_conflict(exc)
        if race is None:
            return None
        exc = ConflictError(str(race))
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge("the request body is too large.")
    elif isinstance(exc, Http404):
        exc = NotFound(*exc.args)
    elif isinstance(exc, DjangoValidationError):
        # A model rule, from a save or a domain operation: named in the resource's own field names.
        if isinstance(serializer_class, type) and issubclass(serializer_class, DomainSerializer):
            exc = ValidationError(serializer_class().api_errors(exc))
        else:
            exc = ValidationError({"nonFieldErrors": [describe(exc)]})
    if not isinstance(exc, APIException):
        return None
    if isinstance(exc, ValidationError):
        # Every 400 has one shape: {field: [messages]}, a list item's errors as "0: ..." under its field.
        exc.detail = _flatten(exc.detail)
    exc.detail = _printable(exc.detail)
    return exc


def exception_handler(exc, context):
    serializer_class = None
    if isinstance(exc, DjangoValidationError):
        serializer_class = getattr(context.get("view"), "get_serializer_class", lambda: None)()
    return drf_exception_handler(api_exception(exc, serializer_class) or exc, context)
