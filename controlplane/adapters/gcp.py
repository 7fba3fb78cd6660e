from controlplane.adapters.base import Adapter


class GcpAdapter(Adapter):
    name = "gcp"
    title = "Google Cloud (Cloud Run)"
    # Cloud Run has no cluster; "default" names the project's regional service pool.
    default_region = "us-central1"
    default_cluster = "default"
