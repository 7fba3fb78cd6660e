"""Django's loaddata, with invariant violations reported as errors naming the object and the rule.

Validation itself happens in the pre_save receiver (controlplane.apps); loaddata runs in one
transaction, so a fixture with one bad object is refused as a whole.
"""

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.core.management.commands import loaddata
from django.db import IntegrityError

from controlplane.errors import Conflict, describe


class InvalidFixtureObject(Exception):
    pass


class Command(loaddata.Command):
    def save_obj(self, obj):
        try:
            return super().save_obj(obj)
        except (ValidationError, Conflict) as e:
            label = f"{obj.object._meta.label}(pk={obj.object.pk})"
            raise InvalidFixtureObject(f"Could not load {label}: {describe(e)}") from e

    def handle(self, *fixture_labels, **options):
        try:
            return super().handle(*fixture_labels, **options)
        except (InvalidFixtureObject, IntegrityError) as e:
            raise CommandError(str(e)) from e
