"""Django's loaddata, as a restore: invariant violations are reported naming the object and the rule,
and the load itself is announced (`fixture_loaded`) in the load's own transaction: the audit trail
records it as one `fixture.load` event.

Validation happens in the pre_save receiver (controlplane.apps); loaddata runs in one transaction,
so a fixture with one bad object is refused as a whole. Rows of a read model (a model marked
`RECOMPUTED_ON_RESTORE`, such as the deployment state) in a dump are skipped: what they derive from is
restored, and the load recomputes them.
"""

from collections import Counter
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.core.management.commands import loaddata
from django.db import IntegrityError

from controlplane.errors import Conflict, describe
from controlplane.identity.context import acting_as
from controlplane.signals import fixture_loaded


class InvalidFixtureObject(Exception):
    pass


class Command(loaddata.Command):
    def loaddata(self, fixture_labels):
        self.restored = Counter()
        with acting_as("loaddata"):
            super().loaddata(fixture_labels)
            if self.restored:
                names = [Path(label).name for label in fixture_labels]
                fixture_loaded.send(sender=type(self), fixtures=names, objects=dict(sorted(self.restored.items())))

    def save_obj(self, obj):
        if getattr(type(obj.object), "RECOMPUTED_ON_RESTORE", False):
            return False  # a read model in a dump: the load recomputes it from what it restores
        try:
            saved = super().save_obj(obj)
            if saved:
                self.restored[obj.object._meta.label_lower] += 1
            return saved
        except (ValidationError, Conflict) as e:
            label = f"{obj.object._meta.label}(pk={obj.object.pk})"
            raise InvalidFixtureObject(f"Could not load {label}: {describe(e)}") from e

    def handle(self, *fixture_labels, **options):
        try:
            return super().handle(*fixture_labels, **options)
        except (InvalidFixtureObject, IntegrityError) as e:
            raise CommandError(str(e)) from e
