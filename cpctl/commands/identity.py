"""`login`, `logout` and `whoami` (declared, with their help, in `cpctl.cli`)."""

import sys

import click

from cpctl import config
from cpctl.client import USAGE, Client, Failure


def login(app, url, token):
    if token is None:
        token = click.prompt("Token", hide_input=True, err=True) if sys.stdin.isatty() else sys.stdin.readline()
    client = Client(url, token)
    me = client.get("/api/me/")
    name = app.profile or config.DEFAULT_PROFILE
    stored = config.load()
    stored["profiles"][name] = {"url": client.url, "token": client.token}
    stored["current"] = name
    where = config.save(stored)
    result = {"profile": name, "url": url.rstrip("/"), "actor": me["actor"], "role": me["role"], "path": str(where)}
    if app.out.json:
        return app.out.emit(result)
    app.out.out.print(f"Logged in to {result['url']} as {me['actor']} ({me['role']}); profile {name!r} in {where}.")


def logout(app):
    stored = config.load()
    name = app.profile or stored["current"]
    if not name or stored["profiles"].pop(name, None) is None:
        raise Failure(USAGE, f"no profile {name or config.DEFAULT_PROFILE!r} to forget.")
    if stored["current"] == name:
        stored["current"] = None  # never another profile unasked: it may be another control plane
    config.save(stored)
    if app.out.json:
        return app.out.emit({"profile": name, "forgotten": True})
    app.out.out.print(f"Forgot profile {name!r}." + (" No profile is current now." if not stored["current"] else ""))


def whoami(app):
    me = app.client.get("/api/me/")
    if app.out.json:
        return app.out.emit(me)
    app.out.out.print(f"{me['actor']} ({me['role']}, {me['authMethod']}) at {app.client.url}")
