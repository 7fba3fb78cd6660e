"""The base every domain model stands on: validation on every save, ids, immutable fields, no deletes.

Django's `save()` does not validate and `loaddata` bypasses `save()` altogether, so validation lives in
two hooks that every write path passes through: `DomainModel.save()` for code, the admin and the APIs,
and a `pre_save` receiver (see `controlplane.apps`) for raw saves, which is how fixtures are loaded.
"""

import re
import secrets
from datetime import UTC
from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from controlplane.errors import AppendOnly, Conflict, DeletionRefused
from controlplane.redaction import configured_secrets, redact, refusal, secrets_in

# What an entity id is; REST's URLs, the pages' and GraphQL's lookups refuse anything else unasked.
ID_REGEX = r"[a-z0-9][a-z0-9-]{1,62}"
ID_PATTERN = re.compile(rf"^{ID_REGEX}$")
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_ID_RANDOM_LENGTH = 12


def new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_RANDOM_LENGTH))


def require_aware(value, field: str, errors: dict) -> Any:
    """Times are UTC: a naive datetime is refused, an aware one is converted."""
    if value is None:
        return None
    if timezone.is_naive(value):
        errors.setdefault(field, []).append("must carry a time zone (times are stored in UTC).")
        return value
    return value.astimezone(UTC)


def unknown(noun: str) -> dict:
    """A foreign key's error message for an id that does not exist."""
    return {"invalid": f"unknown {noun} %(value)r."}


def one_of(field: str, choices: type[models.TextChoices]) -> models.CheckConstraint:
    """The database's own guard that `field` holds one of `choices`."""
    values = list(choices.values)
    return models.CheckConstraint(
        condition=Q(**{f"{field}__in": values}),
        name=f"%(app_label)s_%(class)s_{field}_valid",
        violation_error_message=f"{field} must be one of {', '.join(values)}.",
    )


def set_exactly_when(field: str, when: Q, name: str, message: str) -> models.CheckConstraint:
    """`field` (a time) is set when `when` holds, and empty otherwise."""
    return models.CheckConstraint(
        condition=(when & Q(**{f"{field}__isnull": False})) | (~when & Q(**{f"{field}__isnull": True})),
        name=f"%(app_label)s_%(class)s_{name}",
        violation_error_message=message,
    )


def refuse_deletion(model):
    refusal = AppendOnly if model.APPEND_ONLY else DeletionRefused
    raise refusal(f"{model._meta.verbose_name_plural} are never deleted.")


class DomainQuerySet(models.QuerySet):
    def delete(self):
        refuse_deletion(self.model)

    def update(self, **kwargs):
        if self.model.APPEND_ONLY:
            raise AppendOnly(f"{self.model._meta.verbose_name_plural} are append-only: they are never updated.")
        return super().update(**kwargs)


class DomainModel(models.Model):
    """Validates on every save; refuses changes to `IMMUTABLE_FIELDS` and refuses deletion."""

    IMMUTABLE_FIELDS: ClassVar[tuple[str, ...]] = ()
    # History (audit events, run logs) is written once and never changed.
    APPEND_ONLY: ClassVar[bool] = False
    # What a secret in a text or JSON field meets. Entities users write (services, environments, releases,
    # incidents) refuse it: bad input gets an error naming the field and loses nothing. Records the system
    # writes (run logs, audit events, runs) are never refused: their secret-shaped spans are redacted.
    REFUSES_SECRETS: ClassVar[bool] = False
    # Kept by the domain from other rows (which release is current): a restore does not take them from the
    # fixture, where they may be stale or absent; the load recomputes them (`fixture_loaded`).
    DERIVED_FIELDS: ClassVar[tuple[str, ...]] = ()

    objects = DomainQuerySet.as_manager()

    class Meta:
        abstract = True

    # --- what the database held when this instance was read (for immutability and transitions) ---

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._stored = dict(zip(field_names, values, strict=True))
        return instance

    def _snapshot(self) -> dict[str, Any]:
        return {f.attname: getattr(self, f.attname) for f in self._meta.concrete_fields}

    def refresh_from_db(self, *args, **kwargs):
        super().refresh_from_db(*args, **kwargs)
        self._stored = self._snapshot()

    def stored(self, attname: str) -> Any:
        """The value of `attname` as stored, or None for an object not yet saved."""
        return getattr(self, "_stored", {}).get(attname)

    @property
    def restoring(self) -> bool:
        """True while a fixture (a restore) writes this object: history may arrive in any state."""
        return getattr(self, "_restoring", False)

    def prepare_raw_save(self, using: str) -> None:
        """Before a raw (fixture) save: learn whether the row exists, so it is validated as an update."""
        attnames = [f.attname for f in self._meta.concrete_fields]
        row = type(self)._base_manager.using(using).filter(pk=self.pk).values(*attnames).first()
        if row is not None and self.APPEND_ONLY:
            raise AppendOnly(f"{self._meta.label}(pk={self.pk}) already exists and cannot be rewritten.")
        self._state.adding = row is None
        self._stored = row or {}
        self._restoring = True
        for name in self.DERIVED_FIELDS:
            field = self._meta.get_field(name)
            setattr(self, field.attname, row[field.attname] if row else field.get_default())

    # --- validation ---

    def _secret_fields(self):
        """The fields a secret could be written into: every editable text and JSON field (not ids,
        relations or choices)."""
        for field in self._meta.concrete_fields:
            if field.primary_key or field.is_relation or field.choices or not field.editable:
                continue
            yield field

    def refuse_secrets(self, exclude=None) -> dict[str, list[ValidationError]]:
        """Input is refused: a field holding a secret (what the redactor would redact) gets an error
        naming what was found, never the secret. The refused value is then redacted on this instance,
        so no later rule that quotes a value (and no repr) echoes it; the save fails anyway.

        Restores (fixtures) are checked too: it costs the same few regexes as any other write, and a
        backup carrying a secret is refused naming the object and the field rather than loaded."""
        secrets = configured_secrets()
        errors: dict[str, list[ValidationError]] = {}
        for field in self._secret_fields():
            if exclude and field.name in exclude:
                continue  # not part of this write (a form without the field): the stored value stays
            value = getattr(self, field.attname)
            if isinstance(value, str | dict | list):
                kinds = secrets_in(value, secrets)
                if kinds:
                    errors[field.name] = [ValidationError(refusal(kinds), code="secret")]
                    setattr(self, field.attname, redact(value, secrets))
        return errors

    def redact_secrets(self) -> None:
        """Records are redacted: secret-shaped spans in every text and JSON value become "[REDACTED]".
        A restore comes in as it is: history is restored as it was written (an audit event's hash covers
        its metadata), and what the system wrote was redacted when it was written."""
        if self.restoring:
            return
        secrets = configured_secrets()
        for field in self._secret_fields():
            value = getattr(self, field.attname)
            if isinstance(value, str | dict | list) and value:
                setattr(self, field.attname, redact(value, secrets))

    def clean_fields(self, exclude=None):
        if not self.REFUSES_SECRETS:
            self.redact_secrets()
            super().clean_fields(exclude)
            return
        errors = self.refuse_secrets(exclude)
        try:
            super().clean_fields(exclude)
        except ValidationError as e:
            errors = e.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)

    def clean(self):
        super().clean()
        if not self._state.adding:
            changed = [
                name
                for name in self.IMMUTABLE_FIELDS
                if getattr(self, self._meta.get_field(name).attname) != self.stored(self._meta.get_field(name).attname)
            ]
            if changed:
                raise ValidationError({name: "cannot be changed once set." for name in changed})

    def save(self, *args, **kwargs):
        if self.APPEND_ONLY and not self._state.adding:
            raise AppendOnly(f"{self._meta.verbose_name_plural} are append-only: {self.pk} cannot be changed.")
        self.full_clean()
        if self._state.adding:
            # Validation has just refused a taken id, so skip Django's UPDATE-then-INSERT probe.
            kwargs.setdefault("force_insert", True)
        # One transaction for the change and what post_save writes with it (its audit event).
        with transaction.atomic(savepoint=False):
            super().save(*args, **kwargs)
        self._stored = self._snapshot()
        self._state.adding = False

    def delete(self, *args, **kwargs):
        refuse_deletion(type(self))


class Archivable(models.Model):
    """Services and environments are archived, never deleted, so their ids stay taken."""

    archived_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    def clean(self):
        super().clean()
        if self.stored("archived_at") and self.archived_at and not self.restoring:
            raise ValidationError(f"{self} is archived; restore it before changing it.")


class StatusMachine(models.Model):
    """A status field (`STATUS_FIELD`) that starts at the first state of `TRANSITIONS` and moves only along it.

    Moves are made by `controlplane.lifecycle.move` (a compare-and-swap); `save()` refuses status edits.
    A restore (fixture) may bring an object in any state, and move a stored one only along an edge.
    """

    TRANSITIONS: ClassVar[dict[str, tuple[str, ...]]]
    MOVED_BY: ClassVar[str]  # the domain's words for what moves it, for error messages
    STATUS_FIELD: ClassVar[str] = "status"
    # What the moves set along with the status (activation time, ...): like the status, never written by save(),
    # so an edit of one is refused (it would be audited yet never stored).
    MOVED_FIELDS: ClassVar[tuple[str, ...]] = ()
    # The MOVED_FIELDS a new object may name when it is created (a run's task), not later.
    SET_ON_CREATE: ClassVar[tuple[str, ...]] = ()
    # The states a new object may start in (default: the first of TRANSITIONS).
    INITIAL_STATES: ClassVar[tuple[str, ...]] = ()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        """An edit writes the edited fields only, and only while the status is still the one this instance
        read: an instance read before a move would otherwise write the old status (or stamps) back."""
        if self._state.adding or kwargs.get("update_fields") is not None:
            return super().save(*args, **kwargs)
        moved = {self.STATUS_FIELD, *self.MOVED_FIELDS}
        kwargs["update_fields"] = [
            f.name for f in self._meta.concrete_fields if not f.primary_key and f.name not in moved
        ]
        with transaction.atomic():
            status = self.stored(self.STATUS_FIELD)
            current = (
                type(self).objects.select_for_update().filter(pk=self.pk).values_list(self.STATUS_FIELD, flat=True)
            ).first()
            if current != status:
                raise Conflict(
                    f"{self._meta.verbose_name} {self.pk} is {current} now (it was {status} when read); reload it."
                )
            return super().save(*args, **kwargs)

    @property
    def allowed_moves(self) -> tuple[str, ...]:
        """The states it can move to from the one it is in, by `TRANSITIONS` (none once it is final): what a
        door asks before offering a move, rather than knowing the machine itself."""
        return self.TRANSITIONS[getattr(self, self.STATUS_FIELD)]

    def move_refusal(self, target: str) -> str | None:
        """Why a move to `target` would be refused as it stands (the move's own 409 message), or None."""
        current = getattr(self, self.STATUS_FIELD)
        return None if target in self.TRANSITIONS[current] else self.transition_refusal(current, target)

    def transition_refusal(self, current: str, target: str) -> str:
        allowed = self.TRANSITIONS[current]
        then = f"it can move to {' or '.join(allowed)}" if allowed else "it is final"
        return f"{self._meta.verbose_name} {self.pk} is {current}: it cannot move to {target}; {then}."

    def clean(self):
        super().clean()
        initial = self.INITIAL_STATES or (next(iter(self.TRANSITIONS)),)
        now, before = getattr(self, self.STATUS_FIELD), self.stored(self.STATUS_FIELD)
        problem = None
        if now not in self.TRANSITIONS:
            field = self.STATUS_FIELD
            plural = field + ("es" if field.endswith("s") else "s")
            problem = f"{now!r} is not a {field}; the {plural} are {', '.join(self.TRANSITIONS)}."
        elif self._state.adding:
            if now not in initial and not self.restoring:
                starts = " or ".join(initial)
                problem = f"a {self._meta.verbose_name} is created {starts}; it moves on only by {self.MOVED_BY}."
        elif now != before:
            if not self.restoring:
                problem = f"changes only by {self.MOVED_BY}, never by editing the {self._meta.verbose_name}."
            elif now not in self.TRANSITIONS[before]:
                problem = self.transition_refusal(before, now)
        errors = self._moved_field_edits()
        if problem:
            errors[self.STATUS_FIELD] = problem
        if errors:
            raise ValidationError(errors)

    def _moved_field_edits(self) -> dict[str, str]:
        """What the moves stamp is theirs: `save()` leaves it out of the UPDATE, so an edit would be audited
        yet never stored. A new object starts without it (but for `SET_ON_CREATE`); a restore brings it as
        it was."""
        if self.restoring:
            return {}
        errors = {}
        for name in self.MOVED_FIELDS:
            if self._state.adding and name in self.SET_ON_CREATE:
                continue
            field = self._meta.get_field(name)
            before = field.get_default() if self._state.adding else self.stored(field.attname)
            if getattr(self, field.attname) != before:
                errors[name] = f"is set by {self.MOVED_BY}, never by editing the {self._meta.verbose_name}."
        return errors


class Entity(DomainModel):
    """A domain model with a typed string id: `<prefix><lower-case letters, digits, dashes>`."""

    ID_PREFIX: ClassVar[str]

    id = models.CharField(
        primary_key=True,
        max_length=63,
        blank=True,  # blank means "generate one" on create
        help_text="Lower-case letters, digits and dashes, starting with the type's prefix. Generated when empty.",
    )

    class Meta:
        abstract = True

    def clean_fields(self, exclude=None):
        errors = {}
        try:
            super().clean_fields(exclude)
        except ValidationError as e:
            errors = e.update_error_dict(errors)
        if exclude is None or "id" not in exclude:
            problem = self.id_problem()
            if problem:
                errors.setdefault("id", []).append(problem)
        if errors:
            raise ValidationError(errors)

    def id_problem(self) -> str | None:
        stored_id = self.stored("id")
        if stored_id and self.id != stored_id:
            return f"cannot be changed once set (it is {stored_id!r})."
        if not self.id:
            # Code and forms may leave it empty for the server to generate; a restore must carry it.
            return None if self._state.adding and not self.restoring else "is required."
        if not self.id.startswith(self.ID_PREFIX):
            return f"must start with {self.ID_PREFIX!r}."
        if not ID_PATTERN.fullmatch(self.id):  # not match: `$` would let a trailing newline through
            return "must be 2-63 lower-case letters, digits or dashes, starting with a letter or digit."
        return None

    def save(self, *args, **kwargs):
        if not self.id and self._state.adding:
            self.id = new_id(self.ID_PREFIX)
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return self.id
