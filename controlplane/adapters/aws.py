from controlplane.adapters.base import Adapter


class AwsAdapter(Adapter):
    name = "aws"
    title = "Amazon Web Services (ECS)"
    # ECS names an account's first cluster "default".
    default_region = "us-east-1"
    default_cluster = "default"
