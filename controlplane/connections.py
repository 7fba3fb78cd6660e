"""Connections (docs/adapters.md, "Connections"): how a live adapter reaches its platform.

`CONTROLPLANE_CONNECTIONS` (JSON, or the path of a JSON file) names each connection and says which adapter
it is for and where that adapter's platform is. An environment names one (`Environment.connection`); without
one its adapters simulate. Credentials are referenced (a kubeconfig file and context, an AWS profile or the
SDK's usual chain), never written here, never stored in the database: a key that looks like one is refused.

This module reads nothing from Django (settings.py calls `parse`), so a bad configuration stops the process
at start with a message naming the connection and the key.
"""

import re
from dataclasses import dataclass, field

from controlplane.redaction import SECRET_KEY_NAME

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
LIVE_ADAPTERS = ("aws", "k8s")  # the others simulate in every environment (docs/adapters.md)
# Per adapter: the keys a connection may have beside the common ones, and which are required.
KEYS = {
    "k8s": {"kubeconfig": str, "context": str, "namespace": str},
    "aws": {"region": str, "cluster": str, "profile": str, "endpointUrl": str},
}
REQUIRED = {"k8s": (), "aws": ("region", "cluster")}
COMMON = {"adapter": str, "names": dict, "wait": bool, "timeoutSeconds": (int, float), "pollSeconds": (int, float)}
# A platform name: a Kubernetes object name (DNS-1123 label) and an ECS service name both fit this.
PLATFORM_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class Connection:
    name: str
    adapter: str
    # Kubernetes: the kubeconfig file (empty: $KUBECONFIG, ~/.kube/config, or the pod's service account) and its
    # context (empty: the file's current one), the namespace (empty: the environment's name).
    kubeconfig: str = ""
    context: str = ""
    namespace: str = ""
    # Amazon ECS: region and cluster, an AWS profile (empty: the SDK's default chain), an endpoint (emulators).
    region: str = ""
    cluster: str = ""
    profile: str = ""
    endpoint_url: str = ""
    # Names on the platform, by service id; a service not named is its id without `svc-`.
    names: dict = field(default_factory=dict, hash=False)
    # False: a run ends once the platform has accepted the new version (emulators that never finish a rollout).
    wait: bool = True
    timeout_seconds: float = 600  # how long a rollout may take before its run fails
    poll_seconds: float = 5  # how often an ECS deployment is asked about; a Kubernetes watch is restarted

    def platform_name(self, service_id: str) -> str:
        return self.names.get(service_id) or service_id.removeprefix("svc-")

    @property
    def where(self) -> str:
        """Where it deploys, in words, for a run's log and a page (no credentials: those are references)."""
        if self.adapter == "k8s":
            namespace = f", namespace {self.namespace}" if self.namespace else ""
            return f"context {self.context or '(current)'}{namespace}"
        endpoint = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"region {self.region}, cluster {self.cluster}{endpoint}"


def parse(raw: dict) -> dict[str, Connection]:
    """The connections `raw` describes, or a ValueError naming the first connection and key that is wrong."""
    if not isinstance(raw, dict):
        raise ValueError("must be a JSON object of connections by name")
    connections = {}
    for name, spec in raw.items():
        connections[name] = _connection(name, spec)
    return connections


def _connection(name: str, spec) -> Connection:
    where = f"connection {name!r}"
    if not NAME.match(name):
        raise ValueError(f"{where}: a name is 1-63 lower-case letters, digits or dashes")
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: must be an object")
    adapter = spec.get("adapter")
    if adapter not in LIVE_ADAPTERS:
        raise ValueError(f"{where}: adapter must be one of {', '.join(LIVE_ADAPTERS)} (the live ones), not {adapter!r}")
    allowed = {**COMMON, **KEYS[adapter]}
    for key, value in spec.items():
        if key not in allowed:
            if SECRET_KEY_NAME.search(key):
                raise ValueError(
                    f"{where}: {key!r} looks like a credential; connections reference credentials (a kubeconfig "
                    "and context, an AWS profile), they never hold them"
                )
            raise ValueError(f"{where}: unknown key {key!r}; {adapter} connections take {', '.join(sorted(allowed))}")
        if value is None:
            continue
        kind = allowed[key]
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise ValueError(f"{where}: {key} must be {_kind_name(kind)}")
    for key in REQUIRED[adapter]:
        if not spec.get(key):
            raise ValueError(f"{where}: {key} is required for an {adapter} connection")
    names = spec.get("names") or {}
    for service_id, platform_name in names.items():
        if not (
            service_id.startswith("svc-") and isinstance(platform_name, str) and PLATFORM_NAME.match(platform_name)
        ):
            raise ValueError(
                f"{where}: names maps service ids (svc-…) to platform names of 1-63 lower-case letters, digits or "
                f"dashes; {service_id!r}: {platform_name!r} is not one"
            )
    for key in ("timeoutSeconds", "pollSeconds"):
        if spec.get(key) is not None and not spec[key] > 0:
            raise ValueError(f"{where}: {key} must be a positive number of seconds")
    values = {key: spec[key] for key in spec if spec[key] is not None and key not in ("adapter", "names")}
    renamed = {"endpointUrl": "endpoint_url", "timeoutSeconds": "timeout_seconds", "pollSeconds": "poll_seconds"}
    return Connection(
        name=name, adapter=adapter, names=dict(names), **{renamed.get(k, k): v for k, v in values.items()}
    )


def _kind_name(kind) -> str:
    return {str: "a string", dict: "an object", bool: "true or false"}.get(kind, "a number")


def configured() -> dict[str, Connection]:
    from django.conf import settings

    return settings.CONTROLPLANE_CONNECTIONS


def names() -> list[str]:
    return sorted(configured())


def get(name: str) -> Connection | None:
    return configured().get(name) if name else None
