from controlplane.adapters.base import Adapter


class FlyAdapter(Adapter):
    name = "fly"
    title = "Fly.io"
    # Fly apps live in an organisation; "personal" is every account's own.
    default_region = "iad"
    default_cluster = "personal"
