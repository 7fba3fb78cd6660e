"""The one permission model. REST, GraphQL, the dashboard and the admin all ask `can()`."""

import enum


class Role(enum.IntEnum):
    """Each role includes the ones below it."""

    VIEWER = 1
    DEPLOYER = 2
    ADMIN = 3

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, name: object) -> "Role | None":
        return cls.__members__.get(name.upper()) if isinstance(name, str) else None


# What each action needs.
PERMISSIONS: dict[str, Role] = {
    "read": Role.VIEWER,
    "release.create": Role.DEPLOYER,
    "release.update": Role.DEPLOYER,
    "release.deploy": Role.DEPLOYER,
    "release.promote": Role.DEPLOYER,
    "run.approve": Role.DEPLOYER,
    "run.reject": Role.DEPLOYER,
    "run.cancel": Role.DEPLOYER,
    "rollback": Role.DEPLOYER,
    "drift.check": Role.DEPLOYER,  # asks the platform what runs there (a read there, but not a free one)
    "incident.create": Role.DEPLOYER,
    "incident.update": Role.DEPLOYER,
    "incident.acknowledge": Role.DEPLOYER,
    "incident.resolve": Role.DEPLOYER,
    "service.create": Role.ADMIN,
    "service.update": Role.ADMIN,
    "service.archive": Role.ADMIN,
    "environment.create": Role.ADMIN,
    "environment.update": Role.ADMIN,
    "environment.archive": Role.ADMIN,
    "changewindow.create": Role.ADMIN,
    "changewindow.update": Role.ADMIN,
    "freeze.create": Role.ADMIN,
    "freeze.update": Role.ADMIN,
    # Integrations hold secrets and a webhook's URL is often one (Slack's): admins only, reads included.
    "integration.read": Role.ADMIN,
    "integration.create": Role.ADMIN,
    "integration.update": Role.ADMIN,
    "integration.rotate": Role.ADMIN,
    "webhook.read": Role.ADMIN,
    "webhook.create": Role.ADMIN,
    "webhook.update": Role.ADMIN,
    "webhook.rotate": Role.ADMIN,
    "webhook.redeliver": Role.ADMIN,
    "webhook.ping": Role.ADMIN,
    "admin.access": Role.ADMIN,
}


def needed(action: str) -> Role:
    """The least role that may do `action`: what a page names beside a button it disables."""
    return PERMISSIONS[action]


def can(principal, action: str) -> bool:
    return principal is not None and principal.role is not None and principal.role >= needed(action)


def refusal(principal, action: str) -> str:
    return f"{action} needs the {needed(action)} role; {principal.actor} has {principal.role or 'none'}."
