"""Amazon ECS: a service per control-plane service. Live through boto3: a new revision of the service's current
task definition with the release's image, the service pointed at it, then its deployment followed until its
`rolloutState` is COMPLETED or FAILED (the circuit breaker's reason goes in the log), within the connection's
deadline (docs/adapters.md, "Amazon ECS")."""

import functools
import threading

from controlplane import redaction
from controlplane.adapters.base import Adapter, PlatformError, Progress, Step, StepFailed, Target, answered

# What register_task_definition takes of what describe_task_definition gives (the rest is ECS's own: ARN,
# revision, status, registeredAt, ...).
REGISTERED_FIELDS = (
    "family",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "containerDefinitions",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
    "inferenceAccelerators",
    "ephemeralStorage",
    "runtimePlatform",
)


class AwsAdapter(Adapter):
    name = "aws"
    title = "Amazon Web Services (ECS)"
    # ECS names an account's first cluster "default".
    default_region = "us-east-1"
    default_cluster = "default"
    live = True

    def task_definition(self, target: Target) -> dict:
        return {
            "family": f"{target.app}-{target.environment}",
            "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"],
            "cpu": "256",
            "memory": "512",
            "containerDefinitions": [
                {
                    "name": target.app,
                    "image": target.image,
                    "essential": True,
                    "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
                    "environment": [{"name": "RELEASE", "value": target.release_id}],
                }
            ],
        }

    def plan(self, target: Target) -> list[Step]:
        if target.connection is not None:  # live: the service's own definition, with the new image
            register = Step(
                "register-task-definition",
                f"Register a revision of {target.app}'s task definition with image {target.image}",
            )
        else:
            register = Step(
                "register-task-definition",
                "Register the task definition",
                {"taskDefinition": self.task_definition(target)},
            )
        return [
            register,
            Step(
                "update-service",
                f"Point service {target.app} in cluster {target.cluster} at it",
                {"forceNewDeployment": True},
            ),
            Step("wait-stable", "Wait for the service to become stable", {"desiredCount": 2, "runningCount": 2}),
        ]

    def perform_live(self, step: Step, target: Target, progress: Progress) -> dict:
        ecs = client(target.connection)
        if step.name == "register-task-definition":
            return self.register(ecs, target, progress)
        if step.name == "update-service":
            return self.update_service(ecs, target, progress)
        if not target.connection.wait:
            return {"waited": False, "why": "the connection says wait: false"}
        return self.wait_stable(ecs, target, progress)

    def service(self, ecs, target: Target) -> dict:
        cluster, name = target.cluster, target.app
        with answered(f"aws: describe service {name} in cluster {cluster}", _reason):
            found = ecs.describe_services(cluster=cluster, services=[name])
        services = [s for s in found.get("services", ()) if s.get("status") != "INACTIVE"]
        if not services:
            raise StepFailed(
                f"aws: ECS service {name} not found in cluster {cluster} ({target.connection.region}); the control "
                "plane updates services, it does not create them"
            )
        return services[0]

    def register(self, ecs, target: Target, progress: Progress) -> dict:
        current = self.service(ecs, target)["taskDefinition"]
        with answered(f"aws: describe task definition {current}", _reason):
            definition = ecs.describe_task_definition(taskDefinition=current)["taskDefinition"]
        containers = definition["containerDefinitions"]
        named = [c for c in containers if c["name"] == target.app] or (containers if len(containers) == 1 else [])
        if not named:
            raise StepFailed(
                f"aws: task definition {current} has no container named {target.app} (it has "
                f"{', '.join(c['name'] for c in containers)}); name the service's container in the connection's names"
            )
        named[0]["image"] = target.image
        new = {key: definition[key] for key in REGISTERED_FIELDS if definition.get(key) not in (None, [], {})}
        tags = [
            {"key": "controlplane:service", "value": target.service_id},
            {"key": "controlplane:release", "value": target.release_id},
            {"key": "controlplane:sha", "value": target.sha},
            *([{"key": "controlplane:actor", "value": target.actor}] if target.actor else []),
        ]
        with answered(f"aws: register a revision of {definition['family']}", _reason):
            registered = ecs.register_task_definition(**new, tags=tags)["taskDefinition"]
        progress.state["taskDefinition"] = registered["taskDefinitionArn"]
        return {"from": current, "taskDefinition": registered["taskDefinitionArn"], "image": target.image}

    def update_service(self, ecs, target: Target, progress: Progress) -> dict:
        arn = progress.state["taskDefinition"]
        with answered(f"aws: update service {target.app} in cluster {target.cluster}", _reason):
            service = ecs.update_service(cluster=target.cluster, service=target.app, taskDefinition=arn)["service"]
        if service.get("taskDefinition") != arn:
            raise StepFailed(
                f"aws: ECS did not take task definition {arn} for service {target.app} "
                f"(it reports {service.get('taskDefinition')})"
            )
        primary = next((d for d in service.get("deployments", ()) if d.get("status") == "PRIMARY"), None)
        return {"taskDefinition": arn, "deployment": primary.get("id") if primary else None}

    def wait_stable(self, ecs, target: Target, progress: Progress) -> dict:
        """Ask about the service's deployment of our task definition every poll interval until its rollout is
        COMPLETED (done) or FAILED (the run fails with ECS's reason), logging each change."""
        connection, arn = target.connection, progress.state["taskDefinition"]
        deadline = progress.monotonic() + connection.timeout_seconds
        said = None
        while not progress.cancelled():
            service = self.service(ecs, target)
            ours = next((d for d in service.get("deployments", ()) if d.get("taskDefinition") == arn), None)
            if ours is None:
                raise StepFailed(f"aws: service {target.app} no longer deploys {arn}: another deployment replaced it")
            state = ours.get("rolloutState") or "IN_PROGRESS"
            reason = ours.get("rolloutStateReason") or ""
            counts = {k: ours.get(k, 0) for k in ("desiredCount", "runningCount", "pendingCount", "failedTasks")}
            status = f"{state}: {counts['runningCount']} of {counts['desiredCount']} tasks running" + (
                f" ({reason})" if reason else ""
            )
            if status != said:
                said = status
                progress.log(f"aws: {target.app}: {status}", adapter=self.name, rolloutState=state, **counts)
            if state == "COMPLETED":
                return {"deployment": ours.get("id"), "rolloutState": state, "taskDefinition": arn}
            if state == "FAILED":
                raise StepFailed(f"aws: the deployment of {arn} to service {target.app} failed: {reason or state}")
            if progress.monotonic() + connection.poll_seconds > deadline:
                raise StepFailed(
                    f"aws: service {target.app} did not become stable within {connection.timeout_seconds:g}s "
                    f"(last: {said})"
                )
            progress.sleep(connection.poll_seconds)
        return {"stopped": "the run was ended elsewhere"}

    def running(self, target: Target) -> str | None:
        ecs = client(target.connection)
        try:
            found = ecs.describe_services(cluster=target.cluster, services=[target.app])
            service = next((s for s in found.get("services", ()) if s.get("status") != "INACTIVE"), None)
            if service is None:
                return None
            definition = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
        except Exception as e:
            raise PlatformError(
                f"aws: describing service {target.app} in cluster {target.cluster}: {_reason(e)}"
            ) from None
        containers = definition["containerDefinitions"]
        named = [c for c in containers if c["name"] == target.app] or (containers if len(containers) == 1 else [])
        return named[0]["image"] if named else None


def _reason(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict) and "Error" in response:
        return f"{response['Error'].get('Code')}: {response['Error'].get('Message')}"
    return f"{type(error).__name__}: {error}"


_clients_lock = threading.Lock()


@functools.cache
def client(connection):
    """One ECS client per connection and process (boto3 clients are thread-safe, sessions are not). Its keys,
    wherever the SDK found them, become secrets the redactor knows."""
    import boto3
    from botocore.config import Config

    with _clients_lock:
        try:
            session = boto3.session.Session(profile_name=connection.profile or None, region_name=connection.region)
            credentials = session.get_credentials()
            if credentials is not None:
                frozen = credentials.get_frozen_credentials()
                for value in (frozen.secret_key, frozen.token):
                    redaction.remember(value)
            return session.client(
                "ecs",
                endpoint_url=connection.endpoint_url or None,
                config=Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=10, read_timeout=30),
            )
        except Exception as e:  # no such profile, no credentials: a configuration error, said so
            raise PlatformError(f"aws: connection {connection.name}: {_reason(e)}") from None
