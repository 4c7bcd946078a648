"""Clients can never call the IAM-only publish mutations, whatever shape the request takes.

The finding: the local gateway's auth check read only plain top-level fields, so an inline
fragment ran ``publishInvoiceGenerated`` without a token. The gateway now collects root
fields through aliases, fragments and inline fragments (``devstack/gateway.py``); in AWS,
AppSync's ``@aws_iam`` directive on the mutation does the same.
"""

from __future__ import annotations

import pytest

from tests.e2e.test_realtime_gql import register
from tests.e2e.test_realtime_protocol import PUBLISH

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("shape", [
    "mutation { %s }",
    "mutation { alias: %s }",
    "mutation { ...F } fragment F on Mutation { %s }",
    "mutation { ... on Mutation { %s } }",
    "mutation { ... { ...F } } fragment F on Mutation { x: %s }",
])
def test_clients_can_never_call_a_publish_mutation(local_stack, shape):
    token, user_id = register(local_stack)
    query = shape % (PUBLISH % user_id)
    for credentials in (token, None):
        status, body = local_stack.graphql(query, token=credentials)
        assert status == 401 and body["errors"][0]["errorType"] == "Unauthorized", (query, body)
        assert body.get("data") is None
