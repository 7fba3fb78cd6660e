from django.apps import AppConfig


class OverviewConfig(AppConfig):
    name = "overview"
    verbose_name = "Overview"

    def ready(self):
        from controlplane.signals import server_stopping
        from overview import deployment_state, feed

        deployment_state.connect()
        server_stopping.connect(feed.on_server_stopping)
