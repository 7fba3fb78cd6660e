"""schema.graphql, committed at the top of the repository, is the schema the server serves: clients and
reviewers read it, so a change to the schema shows in the diff."""

from pathlib import Path

from controlplane.graphql.schema import schema

SDL = Path(__file__).resolve().parents[2] / "schema.graphql"


def test_the_committed_sdl_is_the_served_schema():
    assert SDL.read_text().strip() == str(schema).strip(), (
        "schema.graphql is out of date: run `python manage.py graphql_schema --out schema.graphql` and commit it"
    )


def test_ids_are_the_domain_ids():
    sdl = SDL.read_text()
    # Domain ids (svc-demo), never Relay's opaque global ids: no Node interface, and every id is an ID.
    assert "interface Node" not in sdl
    assert "  id: ID!" in sdl and "  id: String" not in sdl
