"""OIDC: browser sign-in through mozilla-django-oidc, and API access tokens verified locally.

Access tokens are JWTs checked against the provider's published keys (fetched once and cached, so a
request costs no round trip to the provider): signature, expiry, issuer and audience.
"""

import logging
from functools import cache

import jwt
import requests
from django.conf import settings
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from controlplane.identity.context import Principal
from controlplane.identity.errors import IdentityRefused
from controlplane.identity.roles import Role
from controlplane.identity.users import user_for, username_for

log = logging.getLogger(__name__)

REQUIRED_SETTINGS = (
    "OIDC_RP_CLIENT_ID",
    "OIDC_RP_CLIENT_SECRET",
    "OIDC_OP_AUTHORIZATION_ENDPOINT",
    "OIDC_OP_TOKEN_ENDPOINT",
    "OIDC_OP_JWKS_ENDPOINT",
)


def options() -> dict:
    return settings.CONTROLPLANE["oidc"]


def missing_settings() -> list[str]:
    missing = [name for name in REQUIRED_SETTINGS if not getattr(settings, name, "")]
    if not options()["issuer"]:
        missing.append("OIDC_OP_ISSUER")
    return missing


def configured() -> bool:
    return not missing_settings()


def principal_from_claims(claims: dict, via_session: bool = False) -> Principal:
    """The principal for verified claims: the actor claim, and the highest role the role claim maps to."""
    actor = claims.get(options()["actorClaim"])
    if not isinstance(actor, str) or not actor:
        raise IdentityRefused(f"the identity has no '{options()['actorClaim']}' claim to name the actor.", 403)
    values = claims.get(options()["roleClaim"], [])
    values = [values] if isinstance(values, str) else values if isinstance(values, list) else []
    mapped = [Role.parse(options()["roleMap"].get(v)) for v in values if isinstance(v, str)]
    roles = [r for r in mapped if r is not None] or [Role.parse(options()["defaultRole"])]
    if roles == [None]:
        raise IdentityRefused(
            f"{actor} is signed in, but no value of the '{options()['roleClaim']}' claim maps to a role "
            "(viewer, deployer or admin); ask an administrator for access.",
            403,
        )
    return Principal(actor=actor, role=max(roles), auth_method="oidc", via_session=via_session)


@cache
def _jwks_client(uri: str, lifespan: int) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(uri, cache_keys=True, lifespan=lifespan, timeout=10)


def principal_from_access_token(token: str) -> Principal:
    client = _jwks_client(settings.OIDC_OP_JWKS_ENDPOINT, options()["jwksCacheSeconds"])
    try:
        key = client.get_signing_key_from_jwt(token).key
    except jwt.PyJWKClientConnectionError:
        log.warning("the identity provider's keys could not be fetched")
        raise IdentityRefused("the identity provider cannot be reached to verify the token; try again.", 503) from None
    except (jwt.PyJWKClientError, jwt.DecodeError):
        raise IdentityRefused("the access token is malformed or signed by an unknown key.") from None
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[settings.OIDC_RP_SIGN_ALGO],
            audience=options()["audience"],
            issuer=options()["issuer"],
            leeway=options()["leewaySeconds"],
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise IdentityRefused("the access token has expired.") from None
    except jwt.InvalidAudienceError:
        raise IdentityRefused("the access token is meant for another audience.") from None
    except jwt.InvalidIssuerError:
        raise IdentityRefused("the access token comes from another issuer.") from None
    except jwt.InvalidSignatureError:
        raise IdentityRefused("the access token's signature does not verify.") from None
    except jwt.InvalidTokenError:
        raise IdentityRefused("the access token is invalid.") from None
    return principal_from_claims(claims)


class OIDCBackend(OIDCAuthenticationBackend):
    """The authorization code flow (mozilla-django-oidc), with our role mapping and users."""

    def authenticate(self, request, **kwargs):
        if request is None or not configured():
            return None
        try:
            return super().authenticate(request, **kwargs)
        except requests.RequestException as e:
            # The provider refused the code (replayed, tampered, expired) or could not be reached.
            log.warning("OIDC sign-in failed at the provider: %s", type(e).__name__)
            request.oidc_refusal = IdentityRefused("the identity provider did not complete the sign-in; try again.")
            return None

    def get_userinfo(self, access_token, id_token, payload):
        """The verified ID token's claims, completed from the userinfo endpoint when it lacks ours."""
        claims = dict(payload)
        wanted = (options()["roleClaim"], options()["actorClaim"])
        if settings.OIDC_OP_USER_ENDPOINT and not all(name in claims for name in wanted):
            try:
                claims = {**super().get_userinfo(access_token, id_token, payload), **claims}
            except requests.RequestException:
                log.info("userinfo unavailable; using the ID token's claims alone")
        return claims

    def verify_claims(self, claims):
        try:
            self.principal = principal_from_claims(claims, via_session=True)
        except IdentityRefused as refusal:
            self.request.oidc_refusal = refusal
            return False
        return True

    def filter_users_by_claims(self, claims):
        return self.UserModel.objects.filter(username=username_for(self.principal))

    def create_user(self, claims):
        return user_for(self.principal)

    def update_user(self, user, claims):
        return user_for(self.principal)
