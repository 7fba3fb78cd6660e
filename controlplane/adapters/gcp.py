from controlplane.adapters.base import Adapter, Step, Target


class GcpAdapter(Adapter):
    name = "gcp"
    title = "Google Cloud (Cloud Run)"
    # Cloud Run has no cluster; "default" names the project's regional service pool.
    default_region = "us-central1"
    default_cluster = "default"

    def service(self, target: Target) -> dict:
        return {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "metadata": {
                "name": f"{target.app}-{target.environment}",
                "labels": {"cloud.googleapis.com/location": target.region},
            },
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"image": target.image, "env": [{"name": "RELEASE", "value": target.release_id}]}
                        ]
                    }
                }
            },
        }

    def plan(self, target: Target) -> list[Step]:
        return [
            Step("render-service", "Render the Cloud Run service", {"service": self.service(target)}),
            Step(
                "deploy-revision",
                f"Deploy a new revision in {target.region}",
                {"revision": f"{target.app}-{target.sha[:7]}"},
            ),
            Step(
                "shift-traffic", "Send 100% of traffic to it", {"traffic": [{"latestRevision": True, "percent": 100}]}
            ),
        ]
