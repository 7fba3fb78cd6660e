from django.apps import AppConfig


class TokensConfig(AppConfig):
    name = "tokens"
    verbose_name = "API tokens"

    def ready(self):
        from controlplane.identity import apitokens
        from tokens import store

        apitokens.plug(store)
