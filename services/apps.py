from django.apps import AppConfig
from django.db.models.signals import m2m_changed


class ServicesConfig(AppConfig):
    name = "services"
    verbose_name = "Services and environments"

    def ready(self):
        from controlplane.signals import fixture_loaded
        from services.models import Service, check_environment_links, renumber_after_load

        m2m_changed.connect(
            check_environment_links, sender=Service.environments.through, dispatch_uid="services.environment_links"
        )
        fixture_loaded.connect(renumber_after_load, dispatch_uid="services.promotion_order")
