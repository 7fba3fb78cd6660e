"""The platforms the live adapters deploy to, as emulators nobody here wrote, each on a port of its own:

- Kubernetes: kmock's KubernetesEmulator (an aiohttp API server that keeps objects and serves watches), on an
  event loop in a thread of its own, reached by the official client through a kubeconfig file. Three things a
  real API server does that kmock 0.8 leaves out are added here, each a few lines: server-side apply creates
  an object that does not exist yet, a change of spec bumps `metadata.generation`, and a namespace can be made
  forbidden (RBAC's 403, in the API server's words). The test plays the Deployment controller by writing the
  Deployment's status through the status subresource, as the controller does.
- Amazon ECS: moto in server mode (`ThreadedMotoServer`), reached by boto3 over HTTP through `endpointUrl`.
  Its ECS accepts a new task definition but never finishes a rollout (`rolloutState` stays IN_PROGRESS), so
  its connections say `"wait": false`; the waiting itself is tested against recorded answers
  (tests/adapters/test_ecs.py).
"""

import asyncio
import contextlib
import json
import socket
import threading
import urllib.request
import uuid
from pathlib import Path

import kmock
import pytest
from django.utils import timezone
from kmock._internal.k8s import KubernetesError

from controlplane.adapters import aws, k8s
from controlplane.connections import Connection
from controlplane.identity.context import acting_as
from releases import engine, runs
from releases.models import Observation, Release, RunLogEntry, WorkflowRun
from services.models import Environment, Service

APPLY = "application/apply-patch+yaml"


class Cluster(kmock.KubernetesEmulator):
    """kmock's emulator with what a Deployment's life needs of an API server (see the module's docstring)."""

    forbidden: frozenset = frozenset()

    async def _handle(self, request):
        if request.resource is not None and request.namespace in self.forbidden:
            raise KubernetesError(
                status=403,
                reason="Forbidden",
                message=f'{request.resource.plural}.{request.resource.group} "{request.name or ""}" is forbidden: '
                f'User "system:serviceaccount:controlplane:deployer" cannot {request.method.value.lower()} '
                f'resource "{request.resource.plural}" in API group "{request.resource.group}" in the namespace '
                f'"{request.namespace}"',
            )
        if request.resource is not None and request.name and request.subresource is None and request.data:
            key = (request.resource, request.namespace, request.name)
            async with self._lock:
                exists = key in self._objects and not self._objects[key].deleted
                if not exists and request.headers.get("Content-Type", "").startswith(APPLY):
                    body = {**request.data, "metadata": {**request.data.get("metadata", {}), "generation": 1}}
                    self._objects[key] = body  # what the API server does for an apply of a new object
                    await self._buses[request.resource].put({"type": "ADDED", "object": self._objects[key].raw})
                    return _json(self._objects[key].raw, status=201)
                if exists and "spec" in request.data and request.data["spec"] != self._objects[key].get("spec"):
                    generation = self._objects[key].get("metadata", {}).get("generation", 1) + 1
                    request.data.setdefault("metadata", {})["generation"] = generation
        return await super()._handle(request)


def _json(body, status=200):
    import aiohttp.web

    return aiohttp.web.json_response(body, status=status)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Kube:
    """A running emulated cluster: its URL, a kubeconfig naming it, and the official client to play its
    controller with."""

    def __init__(self, cluster: Cluster, url: str, kubeconfig: str):
        from kubernetes import client

        self.cluster, self.url, self.kubeconfig = cluster, url, kubeconfig
        configuration = client.Configuration()
        configuration.host = url
        self.apps = client.AppsV1Api(client.ApiClient(configuration))

    def forbid(self, namespace: str) -> None:
        self.cluster.forbidden = self.cluster.forbidden | {namespace}

    def deployment(self, namespace: str, name: str):
        from kubernetes.client.exceptions import ApiException

        try:
            return self.apps.read_namespaced_deployment(name, namespace)
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def report(self, namespace: str, name: str, **status) -> None:
        """Write the Deployment's status as its controller would: `observedGeneration` is its current generation
        unless given."""
        deployment = self.deployment(namespace, name)
        status.setdefault("observedGeneration", deployment.metadata.generation)
        self.apps.patch_namespaced_deployment_status(name, namespace, {"status": status})

    def requests(self, method: str) -> list:
        return [r for r in self.cluster if r.method.value.lower() == method]


@contextlib.contextmanager
def emulated_cluster(folder: Path):
    """An emulated Kubernetes API server, and a kubeconfig in `folder` (with a token: it must never be seen in a
    log or an answer) that reaches it."""
    loop = asyncio.new_event_loop()
    ready, stop = threading.Event(), None
    found = {}

    async def serve():
        nonlocal stop
        stop = asyncio.Event()
        async with Cluster() as cluster, kmock.Server(cluster) as server:
            found.update(cluster=cluster, url=str(server.url).rstrip("/"))
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), name="kube", daemon=True)
    thread.start()
    assert ready.wait(30), "the emulated API server did not start"
    kubeconfig = folder / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "emulated", "cluster": {"server": found["url"]}}],
                "users": [{"name": "deployer", "user": {"token": KUBE_TOKEN}}],
                "contexts": [{"name": "test", "context": {"cluster": "emulated", "user": "deployer"}}],
                "current-context": "test",
            }
        )
    )
    try:
        yield Kube(found["cluster"], found["url"], str(kubeconfig))
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        k8s._api_client.cache_clear()


@pytest.fixture
def kube(tmp_path):
    """An emulated Kubernetes API server for one test (tests/adapters)."""
    with emulated_cluster(tmp_path) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def shared_kube(tmp_path_factory):
    """One emulated API server for a session's tests that only read what runs: each test keeps to a namespace of
    its own (`k8s_platform`)."""
    with emulated_cluster(tmp_path_factory.mktemp("kube")) as cluster:
        yield cluster


class Platform:
    """A connection `k8s-test` to the shared emulated cluster, in a namespace of the test's own. `platform[service
    id] = image` puts a Deployment running `image` there, as someone with kubectl would; `unreachable()` points the
    connection at a kubeconfig that does not exist (a platform that cannot be asked)."""

    def __init__(self, kube: Kube, settings, namespace: str):
        self.kube, self.settings, self.namespace = kube, settings, namespace
        self.connect(kubeconfig=kube.kubeconfig)

    def connect(self, **options) -> None:
        self.settings.CONTROLPLANE_CONNECTIONS = {
            "k8s-test": connection("k8s-test", "k8s", namespace=self.namespace, **options)
        }

    def unreachable(self) -> None:
        self.connect(kubeconfig="/nonexistent/kubeconfig")

    def __setitem__(self, service_id: str, image: str) -> None:
        name = service_id.removeprefix("svc-")
        manifest = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": name, "image": image}]},
                },
            },
        }
        self.kube.apps.patch_namespaced_deployment(
            name, self.namespace, manifest, field_manager="kubectl", _content_type=APPLY
        )


@pytest.fixture
def k8s_platform(shared_kube, settings):
    return Platform(shared_kube, settings, f"t-{uuid.uuid4().hex[:12]}")


KUBE_TOKEN = "kube-token-8f14e45fceea167a5a36dedd4bea2543"  # the emulated cluster's: a test's own


@pytest.fixture
def ecs(monkeypatch):
    """moto's ECS in server mode on a port of its own, and boto3's ECS client on it (to set the account up
    and to look at what the adapter did). The credentials are moto's test ones."""
    import boto3
    from moto.server import ThreadedMotoServer

    for name, value in (
        ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
    ):
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    # moto's servers in one process share one account's state: each test starts from an empty one.
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()
    yield Ecs(url, boto3.client("ecs", region_name="eu-west-1", endpoint_url=url))
    server.stop()
    aws.client.cache_clear()


class Ecs:
    def __init__(self, url: str, client):
        self.url, self.client = url, client

    def service(self, cluster: str, name: str, image: str = "registry.example/demo:old", container: str = ""):
        """A cluster with a service running one task definition of one container (named like the service)."""
        self.client.create_cluster(clusterName=cluster)
        definition = self.client.register_task_definition(
            family=f"{name}-task",
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            containerDefinitions=[{"name": container or name, "image": image, "essential": True}],
        )["taskDefinition"]
        self.client.create_service(
            cluster=cluster, serviceName=name, taskDefinition=definition["taskDefinitionArn"], desiredCount=2
        )
        return definition["taskDefinitionArn"]

    def running(self, cluster: str, name: str) -> dict:
        """The service's task definition as ECS has it."""
        service = self.client.describe_services(cluster=cluster, services=[name])["services"][0]
        return self.client.describe_task_definition(taskDefinition=service["taskDefinition"], include=["TAGS"])


def connection(name: str, adapter: str, **options) -> Connection:
    """A connection as CONTROLPLANE_CONNECTIONS would give it (parsed by the same code)."""
    from controlplane.connections import parse

    return parse({name: {"adapter": adapter, **options}})[name]


class Execution:
    """The run executed as the worker executes it (releases.engine), on a thread of its own."""

    def __init__(self, run: WorkflowRun):
        self.run, self.outcome = run, None

        def work():
            from django.db import connection

            try:
                with acting_as("worker"):
                    self.outcome = engine.execute(run.id)
            finally:
                connection.close()

        self.thread = threading.Thread(target=work, name=f"run-{run.id}")
        self.thread.start()

    def result(self, timeout=60) -> str:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the run did not end"
        self.run.refresh_from_db()
        return self.outcome


@pytest.fixture
def execute():
    """`execute(run)`: the run executed on a thread; one a failed test left running is ended, so it stops."""
    started = []

    def start(run):
        started.append(Execution(run))
        return started[-1]

    yield start
    for execution in started:
        if execution.thread.is_alive():
            runs.finish(execution.run, succeeded=False, reason="the test ended")
            execution.thread.join(30)


def messages(run) -> list[str]:
    return list(RunLogEntry.objects.filter(run=run).order_by("id").values_list("message", flat=True))


def logged(run, text):
    return any(text in m for m in messages(run))


def connect(env_id: str = "env-staging", *service_ids: str) -> None:
    """The environment names the `k8s_platform` fixture's connection (tests/platforms.py), and the services deploy
    through k8s too (queryset updates: no validation, no audit event, as a test's set-up)."""
    Environment.objects.filter(pk=env_id).update(connection="k8s-test")
    for service in Service.objects.filter(pk__in=service_ids):
        Service.objects.filter(pk=service.pk).update(deployment_adapters=[*service.deployment_adapters, "k8s"])


IMAGE = "github.com/blackroad/demo:9f3b7de"  # rel-123's: svc-demo's current release in env-staging in the demo
ELSEWHERE = "github.com/blackroad/demo:0000000"


def observe(running: str = ELSEWHERE, drifted: bool = True, error: str = "") -> Observation:
    """What a drift check of the connected env-staging would keep for svc-demo (rel-123 current), without asking a
    platform: by default, another image runs there."""
    observation = Observation(
        service_id="svc-demo",
        environment_id="env-staging",
        adapter="k8s",
        connection="k8s-test",
        release=Release.objects.get(pk="rel-123"),
        expected=IMAGE,
        running=running,
        drifted=drifted,
        error=error,
        checked_at=timezone.now(),
    )
    observation.save()
    return observation
