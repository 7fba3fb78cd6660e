from controlplane.adapters.base import Adapter, Step, Target


class AwsAdapter(Adapter):
    name = "aws"
    title = "Amazon Web Services (ECS)"
    # ECS names an account's first cluster "default".
    default_region = "us-east-1"
    default_cluster = "default"

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
        return [
            Step(
                "register-task-definition",
                "Register the task definition",
                {"taskDefinition": self.task_definition(target)},
            ),
            Step(
                "update-service",
                f"Point service {target.app} in cluster {target.cluster} at it",
                {"forceNewDeployment": True},
            ),
            Step("wait-stable", "Wait for the service to become stable", {"desiredCount": 2, "runningCount": 2}),
        ]
