"""API tokens over REST: `POST /api/tokens/` issues one (its secret in this answer only), `GET /api/tokens/`
lists the caller's (an admin's: all), `DELETE /api/tokens/{id}/` revokes."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from controlplane.api.base import Choice, DomainSerializer, DomainViewSet, String, Timestamp
from tokens import lifecycle
from tokens.models import ApiToken, TokenRole


class TokenSerializer(DomainSerializer):
    id = String(read_only=True)
    name = String(max_length=100)
    role = Choice(choices=TokenRole.values, help_text="At most your own role.")
    envIds = serializers.ListField(
        child=String(),
        source="environment_ids",
        required=False,
        allow_null=True,
        help_text="Where it may deploy, promote, roll back and approve; left out or null: every environment.",
    )
    expiresAt = Timestamp(source="expires_at", help_text="RFC 3339 with an offset; at most a year ahead.")
    prefix = String(read_only=True, help_text="The token's first characters, to tell it (never the rest).")
    owner = String(read_only=True, help_text="Who issued it.")
    createdAt = Timestamp(source="created_at", read_only=True)
    lastUsedAt = Timestamp(source="last_used_at", read_only=True, allow_null=True, help_text="To the minute.")
    revokedAt = Timestamp(source="revoked_at", read_only=True, allow_null=True)

    class Meta:
        model = ApiToken

    def create(self, validated_data):
        token, self.secret = lifecycle.issue(
            validated_data["name"],
            validated_data["role"],
            validated_data["expires_at"],
            validated_data.get("environment_ids"),
        )
        return token


class IssuedTokenSerializer(TokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The secret (`cpat_…`): shown in this answer only.")


class TokenViewSet(mixins.CreateModelMixin, mixins.DestroyModelMixin, DomainViewSet):
    serializer_class = TokenSerializer
    queryset = ApiToken.objects.all()
    ordering = ("-created_at", "-id")
    # Any signed-in caller manages their own tokens (with a role up to theirs); the rules are lifecycle's.
    action_permissions = {"create": "read", "destroy": "read"}

    def get_queryset(self):
        return lifecycle.visible(self.request.auth)

    @extend_schema(responses={201: IssuedTokenSerializer})
    def create(self, request, *args, **kwargs):
        """Issue a token: the answer carries its secret, `token`, which is never shown again."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token = serializer.save()
        body = {**serializer.data, "token": serializer.secret}
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": f"/api/tokens/{token.id}/"})

    @extend_schema(responses={204: None})
    def destroy(self, request, *args, **kwargs):
        """Revoke a token, at once (revoking a revoked one changes nothing)."""
        lifecycle.revoke(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
