"""Who is asking, over GraphQL: `me`, as REST's /api/me/ answers it."""

import graphene

from controlplane.identity.context import current_principal


class Me(graphene.ObjectType):
    actor = graphene.String(required=True, description="What the audit trail records for this caller.")
    role = graphene.String(required=True, description="viewer, deployer or admin.")
    auth_method = graphene.String(required=True, description="devToken, oidc or apiToken.")
    token_id = graphene.String(description="An API token's id (apiToken only).")
    owner = graphene.String(description="Who created the API token (apiToken only).")


class Query(graphene.ObjectType):
    me = graphene.Field(Me, required=True)

    @staticmethod
    def resolve_me(root, info):
        described = current_principal().described()
        return {"actor": described["actor"], "role": described["role"], "auth_method": described["authMethod"],
                "token_id": described.get("tokenId"), "owner": described.get("owner")}
