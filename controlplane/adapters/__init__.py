"""The adapter registry: the runtime targets a service can deploy to.

To add a target, write a module beside this one with an `Adapter` subclass and list it in `ADAPTERS`.
"""

from controlplane.adapters.aws import AwsAdapter
from controlplane.adapters.base import Adapter, PlatformError, Progress, Step, StepFailed, Target
from controlplane.adapters.fly import FlyAdapter
from controlplane.adapters.gcp import GcpAdapter
from controlplane.adapters.k8s import KubernetesAdapter
from controlplane.adapters.render import RenderAdapter

ADAPTERS: tuple[type[Adapter], ...] = (AwsAdapter, FlyAdapter, GcpAdapter, KubernetesAdapter, RenderAdapter)

registry: dict[str, Adapter] = {cls.name: cls() for cls in ADAPTERS}


def names() -> list[str]:
    return sorted(registry)


def get(name: str) -> Adapter:
    try:
        return registry[name]
    except KeyError:
        raise LookupError(f"unknown adapter {name!r}; valid adapters: {', '.join(names())}") from None


__all__ = [
    "ADAPTERS",
    "Adapter",
    "PlatformError",
    "Progress",
    "Step",
    "StepFailed",
    "Target",
    "get",
    "names",
    "registry",
]
