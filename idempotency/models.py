"""What a write sent with an Idempotency-Key answered, kept for a retry (idempotency.keys)."""

from django.db import models


class Attempt(models.Model):
    """One principal's use of one key: claimed while its request runs, then its answer, until it expires."""

    principal = models.CharField(max_length=255, help_text="The actor: a key belongs to whoever sent it.")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.TextField(help_text="With its query string.")
    body_digest = models.CharField(max_length=64, help_text="SHA-256 of the request's body.")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    # Unset while the first request is being processed.
    status = models.PositiveSmallIntegerField(null=True)
    content_type = models.CharField(max_length=255, blank=True)
    location = models.TextField(blank=True)
    body = models.BinaryField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["principal", "key"], name="idempotency_one_per_principal")]

    def __str__(self) -> str:
        return f"{self.principal}: {self.key}"
