"""The six AppSync calls moto 5.2.5 lacks (data sources and resolvers), served from dicts.

moto's server answers them with HTTP 404; their exact requests are asserted with
botocore's Stubber in tests/unit/deploy/test_deploy_appsync_stubbed.py. Here they only
let the deploy step run end to end against moto, so idempotency and teardown are checked.
"""

from __future__ import annotations

from typing import Any


class FakeResolverStore:
    """Wraps moto's appsync client; serves only the data source / resolver calls moto lacks."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.exceptions = real.exceptions
        self.data_sources: dict[tuple[str, str], dict] = {}
        self.resolvers: dict[tuple[str, str, str], dict] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def _missing(self, op: str) -> Exception:
        return self.exceptions.NotFoundException({"Error": {"Code": "NotFoundException", "Message": "nope"}}, op)

    def get_data_source(self, apiId: str, name: str) -> dict:  # noqa: N803 - boto3 parameter names
        if (apiId, name) not in self.data_sources:
            raise self._missing("GetDataSource")
        return {"dataSource": dict(self.data_sources[(apiId, name)])}

    def create_data_source(self, apiId: str, name: str, **kw: Any) -> dict:  # noqa: N803
        self.data_sources[(apiId, name)] = dict(kw, name=name)
        return {"dataSource": dict(kw, name=name)}

    update_data_source = create_data_source

    def get_resolver(self, apiId: str, typeName: str, fieldName: str) -> dict:  # noqa: N803
        if (apiId, typeName, fieldName) not in self.resolvers:
            raise self._missing("GetResolver")
        return {"resolver": dict(self.resolvers[(apiId, typeName, fieldName)])}

    def create_resolver(self, apiId: str, typeName: str, fieldName: str, **kw: Any) -> dict:  # noqa: N803
        self.resolvers[(apiId, typeName, fieldName)] = dict(kw, typeName=typeName, fieldName=fieldName)
        return {"resolver": self.resolvers[(apiId, typeName, fieldName)]}

    update_resolver = create_resolver

    def delete_graphql_api(self, apiId: str) -> dict:  # noqa: N803 - children go with the API, as in AppSync
        self.data_sources = {k: v for k, v in self.data_sources.items() if k[0] != apiId}
        self.resolvers = {k: v for k, v in self.resolvers.items() if k[0] != apiId}
        return self._real.delete_graphql_api(apiId=apiId)
