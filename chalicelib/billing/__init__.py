"""Billing: tariffs, invoices, wallet ledger and the SESSION_ENDED / USER_REGISTERED consumers."""
