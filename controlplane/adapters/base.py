from typing import ClassVar


class Adapter:
    """A runtime target. Each declares where a deploy lands when an environment does not say."""

    name: ClassVar[str]
    title: ClassVar[str]
    default_region: ClassVar[str]
    default_cluster: ClassVar[str]

    def effective_placement(self, region: str, cluster: str) -> tuple[str, str]:
        """The region and cluster a deploy uses: the environment's own, else this adapter's defaults."""
        return region or self.default_region, cluster or self.default_cluster

    def __repr__(self) -> str:
        return f"<Adapter {self.name}>"
