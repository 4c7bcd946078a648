"""What moto's AppSync lacks, served from dicts: six calls, and three fields of the API.

The six calls (data sources and resolvers): moto's server answers them with HTTP 404;
their exact requests are asserted with botocore's Stubber in
tests/unit/deploy/test_deploy_appsync_stubbed.py. The three fields (``queryDepthLimit``,
``resolverCountLimit``, ``introspectionConfig``): moto accepts them on create and update
but neither stores nor returns them, so they are remembered here as sent and merged into
what moto answers. Here all of it only lets the deploy step run end to end against moto,
so idempotency and teardown are checked.
"""

from __future__ import annotations

from typing import Any

API_FIELDS_MOTO_DROPS = ("queryDepthLimit", "resolverCountLimit", "introspectionConfig")


class FakeResolverStore:
    """Wraps moto's appsync client; serves only the data source / resolver calls moto lacks."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.exceptions = real.exceptions
        self.data_sources: dict[tuple[str, str], dict] = {}
        self.resolvers: dict[tuple[str, str, str], dict] = {}
        self.api_fields: dict[str, dict] = {}  # apiId -> the fields moto drops, as last sent
        self.api_requests: list[dict] = []  # every create/update_graphql_api, as sent to moto

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
        self.api_fields.pop(apiId, None)
        return self._real.delete_graphql_api(apiId=apiId)

    # -- the API fields moto drops -----------------------------------------------------------
    def _remember(self, kw: dict, answer: dict) -> dict:
        self.api_requests.append(dict(kw))
        api = answer["graphqlApi"]
        self.api_fields[api["apiId"]] = {k: kw[k] for k in API_FIELDS_MOTO_DROPS if k in kw}
        return {**answer, "graphqlApi": self._with_fields(api)}

    def _with_fields(self, api: dict) -> dict:
        return {**api, **self.api_fields.get(api["apiId"], {})}

    def create_graphql_api(self, **kw: Any) -> dict:
        return self._remember(kw, self._real.create_graphql_api(**kw))

    def update_graphql_api(self, **kw: Any) -> dict:
        return self._remember(kw, self._real.update_graphql_api(**kw))

    def list_graphql_apis(self, **kw: Any) -> dict:
        page = self._real.list_graphql_apis(**kw)
        return {**page, "graphqlApis": [self._with_fields(api) for api in page.get("graphqlApis", [])]}

    def get_graphql_api(self, apiId: str) -> dict:  # noqa: N803
        return {"graphqlApi": self._with_fields(self._real.get_graphql_api(apiId=apiId)["graphqlApi"])}
