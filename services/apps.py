from django.apps import AppConfig
from django.db.models.signals import m2m_changed


class ServicesConfig(AppConfig):
    name = "services"
    verbose_name = "Services and environments"

    def ready(self):
        from services.models import Service, check_environment_links

        m2m_changed.connect(
            check_environment_links, sender=Service.environments.through, dispatch_uid="services.environment_links"
        )
