"""API tokens: bearer tokens an operator issues to a machine (a CI pipeline), with a role no higher than
their own, optionally scoped to environments, expiring, revocable (docs/api.md, "API tokens").

The token itself (`cpat_…`) is shown once, when it is issued, and stored only as its SHA-256 digest (a unique
index: finding a presented token is one indexed query). A token is never deleted: revoking it stamps
`revoked_at`, so its id, and what the audit trail says it did, stay attributable."""

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from controlplane.identity.roles import Role
from controlplane.models import Entity, require_aware


class TokenRole(models.TextChoices):
    VIEWER = str(Role.VIEWER)
    DEPLOYER = str(Role.DEPLOYER)
    ADMIN = str(Role.ADMIN)


class ApiToken(Entity):
    ID_PREFIX = "tok-"
    REFUSES_SECRETS = True  # its name is typed by a user
    IMMUTABLE_FIELDS = ("name", "role", "environment_ids", "owner", "digest", "prefix", "created_at", "expires_at")

    name = models.CharField(max_length=100, help_text="What it is for (the pipeline that uses it).")
    role = models.CharField(max_length=8, choices=TokenRole.choices)
    environment_ids = models.JSONField(
        null=True, blank=True, help_text="Where it may deploy, promote, roll back and approve; null: anywhere."
    )
    owner = models.CharField(max_length=255, editable=False, help_text="The actor who issued it.")
    digest = models.CharField(max_length=64, unique=True, editable=False)  # SHA-256 of the token, hex
    prefix = models.CharField(max_length=16, editable=False, help_text="The token's first characters, to tell it.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API token"
        indexes = [models.Index(fields=["owner", "-created_at"], name="token_owner_idx")]

    def __str__(self) -> str:
        return f"{self.id} ({self.name})"

    @property
    def state(self) -> str:
        """"revoked", "expired" or "active": what a list shows."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= timezone.now() else "active"

    def clean(self):
        super().clean()
        errors: dict[str, list[str]] = {}
        for field in ("created_at", "expires_at", "last_used_at", "revoked_at"):
            setattr(self, field, require_aware(getattr(self, field), field, errors))
        if not self.name.strip():
            errors.setdefault("name", []).append("must not be blank.")
        ids = self.environment_ids
        if ids is not None and (
            not isinstance(ids, list)
            or not ids
            or not all(isinstance(i, str) for i in ids)
            or len(set(ids)) != len(ids)
        ):
            errors.setdefault("environment_ids", []).append(
                "must be a list of distinct environment ids, at least one; leave it out for every environment."
            )
        if errors:
            raise ValidationError(errors)
