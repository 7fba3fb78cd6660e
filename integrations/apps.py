from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self):
        from controlplane.signals import worker_started
        from integrations import delivery

        worker_started.connect(delivery.start, dispatch_uid="integrations.webhooks")
