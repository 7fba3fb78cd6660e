"""The one GraphQL schema, composed of each app's Query and Mutation (the project's wiring: it names
every app, like controlplane/urls.py)."""

import graphene

from audit import schema as audit
from controlplane.identity import schema as identity
from incidents import schema as incidents
from integrations import schema as integrations
from overview import schema as overview
from policies import schema as policies  # noqa: F401  (extends Environment with `policy`)
from releases import schema as releases
from services import schema as services
from tokens import schema as tokens


# Fields are listed from the last base to the first.
class Query(
    overview.Query,
    audit.Query,
    integrations.Query,
    incidents.Query,
    releases.Query,
    services.Query,
    tokens.Query,
    identity.Query,
    graphene.ObjectType,
):
    pass


class Mutation(
    integrations.Mutation,
    incidents.Mutation,
    releases.Mutation,
    services.Mutation,
    tokens.Mutation,
    graphene.ObjectType,
):
    pass


schema = graphene.Schema(query=Query, mutation=Mutation)
