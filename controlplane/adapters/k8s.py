from controlplane.adapters.base import Adapter


class KubernetesAdapter(Adapter):
    name = "k8s"
    title = "Kubernetes"
    # With no cluster named, deploy to the cluster the control plane itself runs in.
    default_region = "local"
    default_cluster = "in-cluster"
