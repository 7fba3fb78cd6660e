"""servicesIndex answers are cached under the audit trail's head, as REST's index pages are
(overview/services_index.cached_body): the same document and variables are answered from the cache until a
change moves the head, and nothing else is cached."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db

INDEX = (
    "query($first: Int) { servicesIndex(first: $first) { edges { node { id incidents { highestOpenSeverity } } } } }"
)
CREATE = """mutation { incidentCreate(input: {serviceId: "svc-demo", severity: critical, link: "https://x.example/1"}) {
  errors { message } } }"""


def asked(client, document, **variables) -> tuple[int, dict]:
    with CaptureQueriesContext(connection) as queries:
        response = client.post(document, **variables)
    return len(queries), response


def test_the_same_question_is_answered_from_the_cache_until_a_change(demo, viewer, deployer, settings):
    settings.INDEX_CACHE = True
    first_count, first = asked(viewer, INDEX, first=10)
    again_count, again = asked(viewer, INDEX, first=10)
    assert again.content == first.content
    assert (first_count, again_count) == (4, 1)  # the head, then the page's three queries; then the head alone
    assert first.json()["data"]["servicesIndex"]["edges"][0]["node"]["incidents"]["highestOpenSeverity"] == "high"

    assert deployer(CREATE)["incidentCreate"]["errors"] == []
    count, after = asked(viewer, INDEX, first=10)
    assert count == 4
    assert after.json()["data"]["servicesIndex"]["edges"][0]["node"]["incidents"]["highestOpenSeverity"] == "critical"


def test_other_variables_are_another_answer(demo, viewer, settings):
    settings.INDEX_CACHE = True
    asked(viewer, INDEX, first=10)
    count, response = asked(viewer, INDEX, first=1)
    assert count == 4 and len(response.json()["data"]["servicesIndex"]["edges"]) == 1


def test_only_documents_asking_for_the_index_alone_are_cached(demo, viewer, settings):
    settings.INDEX_CACHE = True
    mixed = "{ me { actor } servicesIndex { edges { node { id } } } }"
    assert [asked(viewer, mixed)[0] for _ in range(2)] == [3, 3]  # computed each time, no head read


def test_an_error_is_not_kept(demo, viewer, settings):
    settings.INDEX_CACHE = True
    bad = '{ servicesIndex(after: "forged") { edges { node { id } } } }'
    for _ in range(2):
        count, response = asked(viewer, bad)
        assert count == 1 and response.json()["errors"][0]["message"] == "after: is not a cursor this API issued."


def test_a_pretty_answer_is_kept_apart(demo, viewer, settings):
    settings.INDEX_CACHE = True
    document = "{ servicesIndex { edges { node { id } } } }"
    compact = viewer.client.get("/graphql/", {"query": document}, HTTP_ACCEPT="application/json")
    pretty = viewer.client.get("/graphql/", {"query": document, "pretty": "1"}, HTTP_ACCEPT="application/json")
    assert pretty.json() == compact.json()
    assert b"\n" not in compact.content and b'\n  "data"' in pretty.content
