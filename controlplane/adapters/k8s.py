"""Kubernetes: a Deployment per service. Live through the official client (`kubernetes`): server-side apply
as field manager `controlplane`, then a watch of the rollout until it is complete, fails its progress
deadline, or takes longer than the connection allows (docs/adapters.md, "Kubernetes")."""

import functools
import json
import threading

from controlplane import redaction
from controlplane.adapters.base import Adapter, PlatformError, Progress, Step, StepFailed, Target, answered

FIELD_MANAGER = "controlplane"
ANNOTATION = "controlplane.dev"  # the prefix of the annotations naming service, release, sha and actor


class KubernetesAdapter(Adapter):
    name = "k8s"
    title = "Kubernetes"
    # With no cluster named, deploy to the cluster the control plane itself runs in.
    default_region = "local"
    default_cluster = "in-cluster"
    live = True

    def connected_placement(self, connection, region, cluster):
        # A kubeconfig context is the cluster; Kubernetes has no region of its own.
        return self.effective_placement(region, connection.context or cluster)

    def namespace(self, target: Target) -> str:
        return (target.connection and target.connection.namespace) or target.environment

    def manifest(self, target: Target) -> dict:
        labels = {"app.kubernetes.io/name": target.app, "app.kubernetes.io/managed-by": FIELD_MANAGER}
        annotations = {
            f"{ANNOTATION}/service": target.service_id,
            f"{ANNOTATION}/release": target.release_id,
            f"{ANNOTATION}/sha": target.sha,
            f"{ANNOTATION}/version": target.version,
            **({f"{ANNOTATION}/actor": target.actor} if target.actor else {}),
        }
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": target.app,
                "namespace": self.namespace(target),
                "labels": labels,
                "annotations": annotations,
            },
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app.kubernetes.io/name": target.app}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                "template": {
                    "metadata": {"labels": labels, "annotations": {f"{ANNOTATION}/release": target.release_id}},
                    "spec": {
                        "containers": [{"name": target.app, "image": target.image, "ports": [{"containerPort": 8080}]}]
                    },
                },
            },
        }

    def plan(self, target: Target) -> list[Step]:
        where = f"{target.cluster}/{self.namespace(target)}"
        return [
            Step("render-manifest", "Render the Deployment manifest", {"manifest": self.manifest(target)}),
            Step("apply", f"Apply it to {where}", {"kubectl": "apply --server-side"}),
            Step("wait-rollout", "Wait for the rollout to finish", {"replicas": 2, "ready": 2}),
        ]

    def perform_live(self, step: Step, target: Target, progress: Progress) -> dict:
        if step.name == "render-manifest":
            return step.detail
        if step.name == "apply":
            return self.apply(target)
        if not target.connection.wait:
            return {"waited": False, "why": "the connection says wait: false"}
        return self.wait_rollout(target, progress)

    def apply(self, target: Target) -> dict:
        namespace, name = self.namespace(target), target.app
        with answered(f"k8s: apply Deployment {namespace}/{name}", _explain):
            applied = _apps(target.connection).patch_namespaced_deployment(
                name,
                namespace,
                self.manifest(target),
                field_manager=FIELD_MANAGER,
                force=True,  # the control plane owns the image: take the field from a `kubectl set image`
                _content_type="application/apply-patch+yaml",
            )
        return {"deployment": f"{namespace}/{name}", "generation": applied.metadata.generation, "image": target.image}

    def wait_rollout(self, target: Target, progress: Progress) -> dict:
        """Watch the Deployment until its rollout is complete (as `kubectl rollout status` decides), logging each
        change of its status. A watch lasts at most the connection's poll interval, so a run ended elsewhere or
        past its deadline stops waiting within one; each watch starts with the Deployment as it is."""
        from kubernetes import watch
        from urllib3.exceptions import HTTPError, ReadTimeoutError

        connection, namespace, name = target.connection, self.namespace(target), target.app
        api = _apps(connection)
        deadline = progress.monotonic() + connection.timeout_seconds
        said = None
        while True:
            if progress.cancelled():
                return {"stopped": "the run was ended elsewhere"}
            left = deadline - progress.monotonic()
            if left <= 0:
                raise StepFailed(
                    f"k8s: Deployment {namespace}/{name} did not finish rolling out within "
                    f"{connection.timeout_seconds:g}s (last: {said or 'no status seen'})"
                )
            seconds = max(1, min(connection.poll_seconds, left))
            watcher = watch.Watch()
            try:
                with answered(f"k8s: watch Deployment {namespace}/{name}", _refused):
                    for event in watcher.stream(
                        api.list_namespaced_deployment,
                        namespace,
                        field_selector=f"metadata.name={name}",
                        timeout_seconds=int(seconds),
                        _request_timeout=(10, seconds),
                    ):
                        deployment = event["object"]
                        if deployment.metadata.name != name:
                            continue
                        if event["type"] == "DELETED":
                            raise StepFailed(f"k8s: Deployment {namespace}/{name} was deleted during the rollout")
                        done, status = rollout_status(deployment)
                        if status != said:
                            said = status
                            progress.log(f"k8s: {namespace}/{name}: {status}", adapter=self.name, **_counts(deployment))
                        if done:
                            return {"deployment": f"{namespace}/{name}", "rolledOut": status}
                        if progress.cancelled() or progress.monotonic() >= deadline:
                            break
            except ReadTimeoutError:
                pass  # the watch's time was up: look again
            except HTTPError as e:  # the cluster did not answer: said once, and asked again until the deadline
                trouble = f"k8s: watching Deployment {namespace}/{name}: the cluster did not answer ({e})"
                if trouble != said:
                    said = trouble
                    progress.log(trouble, level="warning", adapter=self.name)
                progress.sleep(min(seconds, max(0, deadline - progress.monotonic())))
            finally:
                watcher.stop()

    def running(self, target: Target) -> str | None:
        from kubernetes.client.exceptions import ApiException

        namespace, name = self.namespace(target), target.app
        try:
            deployment = _apps(target.connection).read_namespaced_deployment(name, namespace, _request_timeout=30)
        except ApiException as e:
            if e.status == 404:
                return None
            raise PlatformError(f"k8s: reading Deployment {namespace}/{name}: {refusal(e)}") from None
        except PlatformError:
            raise
        except Exception as e:
            raise PlatformError(f"k8s: reading Deployment {namespace}/{name}: {type(e).__name__}: {e}") from None
        return container_image(deployment.spec.template.spec.containers, name)


def container_image(containers, name: str) -> str | None:
    """The image of the container named `name`, or of the only container."""
    named = [c for c in containers or () if c.name == name] or (list(containers) if len(containers or ()) == 1 else [])
    return named[0].image if named else None


def rollout_status(deployment) -> tuple[bool, str]:
    """Whether the rollout is complete, and where it stands in words: `kubectl rollout status`'s rules. A
    `Progressing` condition with reason ProgressDeadlineExceeded fails it (StepFailed, in the cluster's words)."""
    spec, status = deployment.spec, deployment.status
    generation = deployment.metadata.generation or 0
    observed = (status and status.observed_generation) or 0
    if observed < generation:
        return False, f"waiting for the controller to pick up generation {generation}"
    for condition in (status and status.conditions) or ():
        if condition.type == "Progressing" and condition.reason == "ProgressDeadlineExceeded":
            raise StepFailed(
                f"k8s: Deployment {deployment.metadata.namespace}/{deployment.metadata.name} failed: "
                f"{condition.reason}: {condition.message or 'its progress deadline was exceeded'}"
            )
    wanted = spec.replicas if spec.replicas is not None else 1
    updated, replicas = status.updated_replicas or 0, status.replicas or 0
    available = status.available_replicas or 0
    if updated < wanted:
        return False, f"{updated} of {wanted} new replicas updated"
    if replicas > updated:
        return False, f"{replicas - updated} old replicas pending termination"
    if available < updated:
        return False, f"{available} of {updated} updated replicas available"
    return True, f"rolled out: {updated} of {wanted} replicas updated and available"


def _counts(deployment) -> dict:
    status = deployment.status
    return {
        "generation": deployment.metadata.generation,
        "observedGeneration": status and status.observed_generation,
        "replicas": deployment.spec.replicas,
        "updated": (status and status.updated_replicas) or 0,
        "available": (status and status.available_replicas) or 0,
    }


def refusal(error) -> str:
    """An ApiException in the cluster's words: `403 Forbidden: deployments.apps "web" is forbidden: …`."""
    try:
        body = json.loads(error.body or "{}")
    except (TypeError, ValueError):
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    return f"{error.status} {error.reason}" + (f": {message}" if message else "")


def _refused(error) -> str | None:
    """The cluster's refusal (an ApiException), in its words; anything else is not an answer."""
    from kubernetes.client.exceptions import ApiException

    return refusal(error) if isinstance(error, ApiException) else None


def _explain(error) -> str | None:
    """The cluster's refusal, or that it did not answer at all."""
    from urllib3.exceptions import HTTPError

    if isinstance(error, HTTPError | OSError):
        return f"the cluster did not answer ({type(error).__name__}: {error})"
    return _refused(error)


_clients_lock = threading.Lock()


@functools.cache
def _api_client(connection):
    """One API client per connection and process. Its credentials (a kubeconfig's token) become secrets the
    redactor knows, so an error that echoes one never reaches a log."""
    from kubernetes import client, config

    with _clients_lock:
        if connection.kubeconfig or connection.context or not _in_cluster():
            api_client = config.new_client_from_config(
                config_file=connection.kubeconfig or None, context=connection.context or None
            )
        else:
            config.load_incluster_config()
            api_client = client.ApiClient()
    for value in (api_client.configuration.api_key or {}).values():
        redaction.remember(value.removeprefix("Bearer ").strip())
    return api_client


def _in_cluster() -> bool:
    import os

    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def _apps(connection):
    from kubernetes import client

    try:
        return client.AppsV1Api(_api_client(connection))
    except Exception as e:  # no such file or context: a configuration error, said so
        raise PlatformError(f"k8s: connection {connection.name}: cannot load its kubeconfig: {e}") from None
