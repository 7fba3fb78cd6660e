from controlplane.adapters.base import Adapter, Step, Target


class KubernetesAdapter(Adapter):
    name = "k8s"
    title = "Kubernetes"
    # With no cluster named, deploy to the cluster the control plane itself runs in.
    default_region = "local"
    default_cluster = "in-cluster"

    def manifest(self, target: Target) -> dict:
        labels = {"app.kubernetes.io/name": target.app, "app.kubernetes.io/version": target.version}
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": target.app, "namespace": target.environment, "labels": labels},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app.kubernetes.io/name": target.app}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                "template": {
                    "metadata": {"labels": labels, "annotations": {"controlplane/release": target.release_id}},
                    "spec": {
                        "containers": [{"name": target.app, "image": target.image, "ports": [{"containerPort": 8080}]}]
                    },
                },
            },
        }

    def plan(self, target: Target) -> list[Step]:
        return [
            Step("render-manifest", "Render the Deployment manifest", {"manifest": self.manifest(target)}),
            Step("apply", f"Apply it to {target.cluster}/{target.environment}", {"kubectl": "apply --server-side"}),
            Step("wait-rollout", "Wait for the rollout to finish", {"replicas": 2, "ready": 2}),
        ]
