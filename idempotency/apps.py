from django.apps import AppConfig


class IdempotencyConfig(AppConfig):
    name = "idempotency"
    verbose_name = "Idempotency keys"

    def ready(self):
        from controlplane.signals import worker_round
        from idempotency import keys

        worker_round.connect(keys.purge_on_round, dispatch_uid="idempotency.purge")
