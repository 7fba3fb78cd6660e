from controlplane.adapters.base import Adapter, Step, Target


class RenderAdapter(Adapter):
    name = "render"
    title = "Render"
    # Render's default region; it has no clusters.
    default_region = "oregon"
    default_cluster = "default"

    def plan(self, target: Target) -> list[Step]:
        return [
            Step(
                "trigger-deploy",
                f"Trigger a deploy of {target.image}",
                {"service": f"{target.app}-{target.environment}", "commit": target.sha},
            ),
            Step("wait-live", "Wait for the deploy to go live", {"status": "live"}),
        ]
