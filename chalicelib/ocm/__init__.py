"""OpenChargeMap mirror: HTTP client, record mapping, sync worker, station queries."""
