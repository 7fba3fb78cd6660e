"""API tokens over GraphQL: `tokens` (the caller's; an admin's: all), `tokenCreate` (its payload carries the
secret, this once), `tokenRevoke`, through the same serializer and lifecycle as REST."""

import graphene
from django.shortcuts import get_object_or_404

from controlplane.graphql.types import AFTER, FIRST, Create, DateTime, Keyset, Move, connection, given, lookup, paginate
from controlplane.identity.context import current_principal
from tokens import lifecycle
from tokens.api import TokenSerializer
from tokens.models import ApiToken, TokenRole


class TokenType(graphene.ObjectType):
    class Meta:
        name = "ApiToken"

    id = graphene.ID(required=True)
    name = graphene.String(required=True)
    role = graphene.String(required=True, description=", ".join(TokenRole.values))
    env_ids = graphene.List(
        graphene.NonNull(graphene.ID), description="Where it may deploy, promote, roll back, approve; null: anywhere."
    )
    prefix = graphene.String(required=True, description="The token's first characters (never the rest).")
    owner = graphene.String(required=True, description="Who issued it.")
    created_at = DateTime(required=True)
    expires_at = DateTime(required=True)
    last_used_at = DateTime(description="To the minute.")
    revoked_at = DateTime()

    @staticmethod
    def resolve_env_ids(token, info):
        return token.environment_ids


TokenConnection = connection(TokenType)
TOKENS = Keyset(ApiToken, ("-created_at", "-id"), "tokens")


class Query(graphene.ObjectType):
    tokens = graphene.Field(
        graphene.NonNull(TokenConnection),
        first=FIRST,
        after=AFTER,
        description="Your API tokens (an admin: every one), newest first.",
    )

    @staticmethod
    def resolve_tokens(root, info, first=None, after=None):
        return paginate(lifecycle.visible(current_principal()), TOKENS, first, after)


class TokenCreateInput(graphene.InputObjectType):
    name = graphene.String(required=True)
    role = graphene.String(required=True, description="At most your own role.")
    env_ids = graphene.List(graphene.NonNull(graphene.ID), description="Left out or null: every environment.")
    expires_at = DateTime(required=True, description="RFC 3339 with an offset; at most a year ahead.")


class TokenCreate(Create):
    """Issue a token; `secret` is its value (`cpat_…`), in this payload only."""

    permission, serializer_class, input_type = "read", TokenSerializer, TokenCreateInput
    token = graphene.Field(TokenType)
    secret = graphene.String(description="The token itself: shown this once, stored nowhere.")

    @classmethod
    def entity(cls):
        return "token"

    @classmethod
    def perform(cls, input):
        serializer = TokenSerializer(data=given(input))
        serializer.is_valid(raise_exception=True)
        token = serializer.save()
        return {"token": token, "secret": serializer.secret}


class TokenRevoke(Move):
    permission, serializer_class, move = "read", TokenSerializer, lifecycle.revoke
    token = graphene.Field(TokenType)

    @classmethod
    def entity(cls):
        return "token"

    @classmethod
    def perform(cls, id):
        token = get_object_or_404(lookup(ApiToken, id) & lifecycle.visible(current_principal()))
        return {"token": lifecycle.revoke(token)}


class Mutation(graphene.ObjectType):
    token_create = TokenCreate.Field(required=True)
    token_revoke = TokenRevoke.Field(required=True)
