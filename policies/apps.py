from django.apps import AppConfig
from django.core import checks


def policy_files(app_configs=None, **kwargs):
    """`manage.py check` (and every start-up, which runs the checks): each policy file parses and passes the
    schema, or one error names the file and line."""
    from policies import engine

    engine.book.cache_clear()
    try:
        engine.book()
    except engine.PolicyFileError as exc:
        return [checks.Error(str(exc), id="policies.E001")]
    return []


class PoliciesConfig(AppConfig):
    name = "policies"
    verbose_name = "Policies"

    def ready(self):
        from controlplane import governance
        from policies.gate import gate

        checks.register(policy_files, "policies")
        governance.plug(gate)
