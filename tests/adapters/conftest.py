from tests.platforms import ecs, execute, kube  # noqa: F401 - fixtures
