from controlplane.adapters.base import Adapter


class RenderAdapter(Adapter):
    name = "render"
    title = "Render"
    # Render's default region; it has no clusters.
    default_region = "oregon"
    default_cluster = "default"
