from controlplane.adapters.base import Adapter, Step, Target


class FlyAdapter(Adapter):
    name = "fly"
    title = "Fly.io"
    # Fly apps live in an organisation; "personal" is every account's own.
    default_region = "iad"
    default_cluster = "personal"

    def machine_config(self, target: Target) -> dict:
        return {
            "app": f"{target.app}-{target.environment}",
            "primary_region": target.region,
            "build": {"image": target.image},
            "http_service": {"internal_port": 8080, "force_https": True, "min_machines_running": 1},
            "env": {"RELEASE": target.release_id},
        }

    def plan(self, target: Target) -> list[Step]:
        return [
            Step("render-config", "Render fly.toml", {"config": self.machine_config(target)}),
            Step(
                "deploy-machines",
                f"Replace machines in {target.region} (org {target.cluster})",
                {"strategy": "rolling"},
            ),
            Step("health-check", "Wait for health checks to pass", {"checks": "passing"}),
        ]
