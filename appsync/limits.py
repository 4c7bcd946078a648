"""How much one request may ask of the API: set on AppSync by the deploy step, enforced the same way locally.

Without limits one request could alias 1,000 ``login`` calls (1,000 bcrypt checks past
every per-request rate limit) or 1,000 ``stationsNear`` calls that each read up to 50k
documents. AppSync refuses such a request before any resolver runs when the API has
``queryDepthLimit`` and ``resolverCountLimit``; the WAF's rate rules (``appsync/waf.py``)
count requests, not what is inside them, so both are needed. Introspection is off in
prod (the schema is in the repository for those who need it) and on elsewhere, where
GraphiQL needs it.

The local gateway runs :func:`validation_rules` with graphql-core, so a request the
stand-in accepts is one AppSync accepts too. Depth counts field levels (a root field is
level 1), introspection fields included: this schema has no recursive type, so the only
deep queries are introspection's ``ofType`` chains. Fragments and inline fragments add
no level. The resolver count is every selection of a field that has a resolver, aliases
and fragment spreads each counted again: AppSync counts the resolvers it would invoke,
and for this schema, whose resolvers are all on root fields, the two agree.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from graphql import GraphQLError, get_named_type
from graphql.language import FieldNode, FragmentSpreadNode, InlineFragmentNode, OperationDefinitionNode
from graphql.language.visitor import SKIP
from graphql.type import SchemaMetaFieldDef, TypeMetaFieldDef, TypeNameMetaFieldDef
from graphql.validation import ValidationRule

# The app's deepest query is 4 levels (invoices { items { lines { amount } } }); introspection
# tools go deeper: GraphiQL's query (graphql-js 16.9) is 13 levels, graphql-core's 15. Where
# introspection is on they must keep working, and where it is off the app's types never
# reach 15, so one limit serves every stage.
QUERY_DEPTH_LIMIT = 15
# The app's widest request resolves 6 root fields; 20 leaves room and refuses alias floods.
RESOLVER_COUNT_LIMIT = 20
# WAF rate-based rules: requests per client address per window (AWS allows 60-600 s windows).
WAF_WINDOW_SECONDS = 300
WAF_RATE_LIMIT = 1000  # any operation
WAF_LOGIN_RATE_LIMIT = 100  # requests whose body names "login" (after JS-unescaping and lower-casing)

DEPTH_REFUSED = f"The query is nested deeper than this API allows (queryDepthLimit: {QUERY_DEPTH_LIMIT} levels)."
COUNT_REFUSED = (f"The request would run more resolvers than this API allows "
                 f"(resolverCountLimit: {RESOLVER_COUNT_LIMIT}).")
INTROSPECTION_REFUSED = "Introspection is disabled on this API (introspectionConfig: DISABLED)."
_META_FIELDS = {"__schema": SchemaMetaFieldDef, "__type": TypeMetaFieldDef, "__typename": TypeNameMetaFieldDef}


def introspection_config(stage: str) -> str:
    return "DISABLED" if stage == "prod" else "ENABLED"


def api_limits(stage: str) -> dict[str, Any]:
    """The ``create_graphql_api`` / ``update_graphql_api`` parameters for the limits above."""
    return {"queryDepthLimit": QUERY_DEPTH_LIMIT, "resolverCountLimit": RESOLVER_COUNT_LIMIT,
            "introspectionConfig": introspection_config(stage)}


def validation_rules(resolver_fields: Collection[str], stage: str) -> tuple[type[ValidationRule], ...]:
    """graphql-core rules for the same limits; ``resolver_fields`` are ``Type.field`` names with a resolver."""
    fields = frozenset(resolver_fields)

    class QueryLimits(_QueryLimitsRule):
        resolvers = fields

    if introspection_config(stage) == "DISABLED":
        return (QueryLimits, _NoIntrospectionRule)
    return (QueryLimits,)


class _QueryLimitsRule(ValidationRule):
    """Depth and resolver count of each operation, fragments expanded; reports the limits, never the query."""

    resolvers: frozenset[str] = frozenset()

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self.fragments: dict[str, tuple[int, int]] = {}  # measured once each, so spreads cost nothing more
        self.open: set[str] = set()  # fragments being measured: a cycle adds nothing (another rule reports it)

    def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> Any:
        root = self.context.schema.get_root_type(node.operation)
        if root is not None:
            depth, count = self._measure(node.selection_set, root, 0)
            if depth > QUERY_DEPTH_LIMIT:
                self.report_error(GraphQLError(DEPTH_REFUSED, node))
            if count > RESOLVER_COUNT_LIMIT:
                self.report_error(GraphQLError(COUNT_REFUSED, node))
        return SKIP

    def _measure(self, selection_set: Any, parent: Any, level: int) -> tuple[int, int]:
        """(levels below ``level``, resolver selections) of a selection set on type ``parent``."""
        depth = count = 0
        if level > QUERY_DEPTH_LIMIT:  # already refused: looking deeper only costs stack
            return 0, 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                below, inside = self._field(selection, parent, level)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                kind = self.context.schema.get_type(condition.name.value) if condition else parent
                below, inside = self._measure(selection.selection_set, kind, level) if kind else (0, 0)
            elif isinstance(selection, FragmentSpreadNode):
                below, inside = self._fragment(selection.name.value)
            else:
                continue
            depth, count = max(depth, below), count + inside
        return depth, count

    def _field(self, node: FieldNode, parent: Any, level: int) -> tuple[int, int]:
        name = node.name.value
        field = _META_FIELDS.get(name) or (getattr(parent, "fields", None) or {}).get(name)
        if field is None:  # unknown: another rule reports it
            return 0, 0
        count = int(f"{parent.name}.{name}" in self.resolvers)
        if node.selection_set is None:
            return 1, count
        below, inside = self._measure(node.selection_set, get_named_type(field.type), level + 1)
        return 1 + below, count + inside

    def _fragment(self, name: str) -> tuple[int, int]:
        if name in self.fragments:
            return self.fragments[name]
        fragment = self.context.get_fragment(name)
        kind = self.context.schema.get_type(fragment.type_condition.name.value) if fragment else None
        if kind is None or name in self.open:
            return 0, 0
        self.open.add(name)
        # Measured from level 0: its depth below the spread does not depend on where it is spread.
        self.fragments[name] = self._measure(fragment.selection_set, kind, 0)
        self.open.discard(name)
        return self.fragments[name]


class _NoIntrospectionRule(ValidationRule):
    """Refuses ``__schema`` and ``__type`` (``__typename`` stays, as in AppSync), once per document."""

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self.reported = False

    def enter_field(self, node: FieldNode, *_args: Any) -> Any:
        if node.name.value in {"__schema", "__type"}:
            if not self.reported:
                self.report_error(GraphQLError(INTROSPECTION_REFUSED, node))
                self.reported = True
            return SKIP
        return None
