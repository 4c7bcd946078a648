"""The checkpoint key of a feed: same feed, same key; another URL or country set, another key."""

from __future__ import annotations

import pytest

from chalicelib.ocm.client import ClientConfig, OcmClient, feed_identity

BASE = "https://api.openchargemap.io/v3"


@pytest.mark.parametrize("same", [
    "https://API.openchargemap.io/v3/",          # host case, trailing slash
    "HTTPS://api.openchargemap.io/v3?key=secret",  # a key in the URL is a credential, not a feed
])
def test_spellings_of_one_feed_share_a_key(same):
    assert feed_identity(same).key == feed_identity(BASE).key


@pytest.mark.parametrize("other", [
    "http://127.0.0.1:8011/v3",
    "https://api.openchargemap.io/v4",
    "https://api.openchargemap.io:8443/v3",
    "https://api.openchargemap.io/v3?client=other",
])
def test_another_url_is_another_feed(other):
    assert feed_identity(other).key != feed_identity(BASE).key


def test_the_country_set_is_part_of_the_feed_but_not_its_order_or_case():
    assert feed_identity(BASE, ["nl", "DE"]).key == feed_identity(BASE, ["DE", " NL "]).key
    assert feed_identity(BASE, ["DE"]).key != feed_identity(BASE, ["DE", "NL"]).key
    assert feed_identity(BASE, ["DE"]).key != feed_identity(BASE).key
    assert feed_identity(BASE, ["nl", "DE"]).countries == ("DE", "NL")


def test_no_credential_is_kept_in_what_the_checkpoint_stores():
    identity = feed_identity("https://user:pw@api.openchargemap.io/v3?key=secret&client=jucr")
    assert "secret" not in identity.url and "pw" not in identity.url
    assert identity.url == "https://api.openchargemap.io/v3?client=jucr"


def test_the_client_names_its_feed():
    client = OcmClient(ClientConfig(base_url=BASE + "/", api_key="k", countries=("DE",)))
    try:
        assert client.identity == feed_identity(BASE, ["DE"])
    finally:
        client.close()
