"""Where webhooks may go (integrations.addresses): public addresses only, unless private ones are allowed; checked
when an endpoint is created or changed (a ValidationError on `url`) and again at every delivery."""

import pytest

from controlplane.identity.context import acting_as
from integrations import addresses, lifecycle
from integrations.models import WebhookEndpoint
from tests.conftest import refused


@pytest.fixture
def private_refused(settings):
    settings.CONTROLPLANE_WEBHOOKS_ALLOW_PRIVATE = False


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1/", "127.0.0.1, a loopback address"),
        ("http://10.0.0.1/", "10.0.0.1, a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254, a"),
        ("http://[::1]/", "::1, a loopback address"),
        ("http://localhost/", "a loopback address"),
        ("http://192.168.1.20:8080/hooks", "192.168.1.20, a private address"),
        ("http://0.0.0.0/", "0.0.0.0, a"),
        ("http://100.100.100.200/", "100.100.100.200, a shared (carrier-grade NAT) address"),
        ("http://[::ffff:10.0.0.1]/", "a private address"),
        ("https://[fd00::1]/", "fd00::1, a private address"),
    ],
)
def test_creating_an_endpoint_for_a_private_address_is_refused(db, private_refused, url, why):
    with acting_as("tests"):
        refused(lambda: lifecycle.create_webhook(url, ["release.*"]), "url", why)
    assert not WebhookEndpoint.objects.exists()


def test_the_refusal_names_the_host_never_the_path(db, private_refused):
    with acting_as("tests"):
        error = refused(lambda: lifecycle.create_webhook("http://127.0.0.1/T0KEN/s3cret", ["*"]), "url", "loopback")
    assert "s3cret" not in str(error)


def test_a_public_address_is_accepted(db, private_refused):
    with acting_as("tests"):
        endpoint, secret = lifecycle.create_webhook("https://93.184.216.34/hooks", ["release.*"])
    assert endpoint.enabled and secret.startswith("whsec_")


def test_changing_an_endpoint_to_a_private_address_is_refused(db, private_refused):
    with acting_as("tests"):
        endpoint, _ = lifecycle.create_webhook("https://93.184.216.34/hooks", ["release.*"])
        refused(lambda: lifecycle.update_webhook(endpoint, url="http://10.1.2.3/hooks"), "url", "a private address")
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).url == "https://93.184.216.34/hooks"


def test_private_addresses_are_allowed_when_the_install_says_so(db, settings):
    settings.CONTROLPLANE_WEBHOOKS_ALLOW_PRIVATE = True
    with acting_as("tests"):
        endpoint, _ = lifecycle.create_webhook("http://127.0.0.1:8080/hooks", ["release.*"])
    assert endpoint.enabled


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.0.1",
        "169.254.169.254",  # the cloud's instance metadata
        "100.100.100.200",  # another cloud's, in carrier-grade NAT's shared space
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1%eth0",
        "fd12:3456::1",
        "fec0::1",  # site-local
        "ff02::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    ],
)
def test_every_non_public_address_is_refused(address):
    assert addresses.refusal(address)


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808", "2002:808:808::1"]
)
def test_public_addresses_are_not(address):
    assert addresses.refusal(address) is None


def test_a_target_connects_to_the_checked_address_and_keeps_the_host_for_its_headers(settings):
    settings.CONTROLPLANE_WEBHOOKS_ALLOW_PRIVATE = True
    target = addresses.target("http://localhost:8080/hooks/in?team=ops")
    assert (target.scheme, target.host, target.port, target.path) == ("http", "localhost", 8080, "/hooks/in?team=ops")
    assert target.address in ("127.0.0.1", "::1")
    assert target.host_header == "localhost:8080"
    assert addresses.target("https://93.184.216.34").host_header == "93.184.216.34"
    assert addresses.target("https://93.184.216.34").path == "/"
    assert addresses.target("http://[::1]:80/").host_header == "[::1]"


def test_a_name_that_does_not_resolve_is_unresolved_and_a_bad_port_refused(settings):
    settings.CONTROLPLANE_WEBHOOKS_ALLOW_PRIVATE = True
    with pytest.raises(addresses.Unresolved, match=r"receiver\.invalid does not resolve"):
        addresses.target("https://receiver.invalid/hooks")
    with pytest.raises(addresses.AddressRefused) as caught:
        addresses.target("http://127.0.0.1:99999/hooks")
    assert not isinstance(caught.value, addresses.Unresolved)
