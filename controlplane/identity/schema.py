"""Who is asking, over GraphQL: `me`, as REST's /api/me/ answers it."""

import graphene

from controlplane.identity.context import current_principal


class Me(graphene.ObjectType):
    actor = graphene.String(required=True, description="What the audit trail records for this caller.")
    role = graphene.String(required=True, description="viewer, deployer or admin.")
    auth_method = graphene.String(required=True, description="devToken or oidc.")


class Query(graphene.ObjectType):
    me = graphene.Field(Me, required=True)

    @staticmethod
    def resolve_me(root, info):
        principal = current_principal()
        return {"actor": principal.actor, "role": str(principal.role), "auth_method": principal.auth_method}
