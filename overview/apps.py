from django.apps import AppConfig


class OverviewConfig(AppConfig):
    name = "overview"
    verbose_name = "Overview"

    def ready(self):
        from overview import deployment_state

        deployment_state.connect()
