"""The billing fields AppSync sends to the ``billing_resolver`` Lambda (``appsync/resolvers.json``).

All three read the signed-in caller's own data: the ``userId`` the authorizer put in
``resolverContext`` is the only user a call can see, so a call without one is ``Unauthorized``
before the store is touched. The read views themselves are ``views.py``.
"""

from __future__ import annotations

from typing import Any

from chalicelib.billing import views
from chalicelib.billing.repository import BillingRepository
from chalicelib.contracts.errors import Unauthorized
from chalicelib.resolvers import DomainRouter, current_call

router = DomainRouter("billing")


def _signed_in() -> tuple[BillingRepository, str]:
    call = current_call()
    user_id = call.caller.get("userId")
    if not user_id:
        raise Unauthorized("Sign in to see your wallet and invoices.")
    return call.deps, user_id


@router.resolver(type_name="Query", field_name="wallet")
def wallet() -> dict[str, Any] | None:
    return views.wallet_view(*_signed_in())


@router.resolver(type_name="Query", field_name="invoices")
def invoices(first: Any = None, after: Any = None) -> dict[str, Any]:
    return views.list_invoices(*_signed_in(), first, after)


@router.resolver(type_name="Query", field_name="invoice")
def invoice(id: Any = None) -> dict[str, Any]:  # parameters carry the GraphQL arguments' names
    return views.get_invoice(*_signed_in(), id)
