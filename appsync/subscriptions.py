"""Bus -> AppSync subscriptions: the one definition the deploy step and the local stack share.

EventBridge fires a subscription by calling a publish mutation (IAM auth) as a
rule target; AppSync then pushes the mutation's result to every subscriber
whose arguments match. Everything here is pure (no AWS calls) so that the
deploy step can put it into AWS and the local stack can run the very same
rule pattern, input transformer, operation and guard template against moto.

Every rule is derived from the schema: the mutation's input type gives the
input transformer's fields (strings quoted, numbers not) and its return type
the selection set, so renaming a field in the schema cannot leave a stale
transformer behind. Rules match ``source`` as well as ``detail-type``, so no
other service can fire a notification by putting a look-alike event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.contracts.events import EVENT_SOURCES

# Bus detail-type -> publish mutation that fires the matching subscription.
BUS_TO_MUTATION = {
    "INVOICE_GENERATED": "publishInvoiceGenerated",
    "PAYMENT_COMPLETED": "publishPaymentCompleted",
    "OCM_SYNC_COMPLETED": "publishOcmSyncCompleted",
}

# Subscriptions carrying a userId argument: only the authorizer's user may subscribe to it.
# AppSync's Velocity parser refuses a directive glued to the next token ("#end{"), so the
# newline after #end is load-bearing; tests render this exact text with a Velocity engine.
SUBSCRIPTION_GUARD_REQUEST = (
    "#if($util.isNull($context.identity.resolverContext)"
    " || $context.identity.resolverContext.userId != $context.arguments.userId)\n"
    "$util.unauthorized()\n"
    "#end\n"
    '{"version": "2018-05-29", "payload": {}}'
)
SUBSCRIPTION_GUARD_RESPONSE = "$util.toJson(null)"
GUARDED_SUBSCRIPTIONS = ("Subscription.onInvoiceGenerated", "Subscription.onPaymentCompleted")

# Notifications are live-only: retry briefly, then drop (the invoice itself is stored).
TARGET_RETRY_POLICY = {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 300}
TARGET_ID = "appsync"

_NUMERIC = {"Int", "Float", "Boolean"}


@dataclass(frozen=True)
class BusTarget:
    """One bus -> AppSync rule: the GraphQL operation and the input transformer."""

    detail_type: str
    mutation: str
    operation: str
    input_paths: dict[str, str]
    input_template: str

    @property
    def pattern(self) -> dict[str, list[str]]:
        """The rule's event pattern: this detail-type, from its one trusted source."""
        return {"source": [EVENT_SOURCES[self.detail_type]], "detail-type": [self.detail_type]}

    def target(self, endpoint_arn: str, role_arn: str) -> dict[str, Any]:
        """The EventBridge target that runs the publish mutation with the events role (IAM)."""
        return {
            "Id": TARGET_ID, "Arn": endpoint_arn, "RoleArn": role_arn,
            "AppSyncParameters": {"GraphQLOperation": self.operation},
            "InputTransformer": {"InputPathsMap": self.input_paths, "InputTemplate": self.input_template},
            "RetryPolicy": TARGET_RETRY_POLICY,
        }


def bus_rule_name(prefix: str, detail_type: str) -> str:
    return f"{prefix}-to-appsync-{detail_type.lower().replace('_', '-')}"


def bus_targets(schema: Any) -> list[BusTarget]:
    """Derive each publish mutation's operation and transformer from the parsed schema."""
    from graphql import get_named_type, is_scalar_type

    out = []
    mutation_type = schema.mutation_type
    for detail_type, mutation in BUS_TO_MUTATION.items():
        field = mutation_type.fields[mutation]
        input_type = get_named_type(field.args["input"].type)
        return_type = get_named_type(field.type)
        selection = " ".join(name for name, f in return_type.fields.items() if is_scalar_type(get_named_type(f.type)))
        operation = (f"mutation Publish($input: {input_type.name}!) "
                     f"{{ {mutation}(input: $input) {{ {selection} }} }}")
        paths = {}
        parts = []
        for name, f in input_type.fields.items():
            paths[name] = f"$.detail.{name}"
            value = f"<{name}>" if get_named_type(f.type).name in _NUMERIC else f'"<{name}>"'
            parts.append(f'"{name}": {value}')
        template = '{"input": {' + ", ".join(parts) + "}}"
        out.append(BusTarget(detail_type, mutation, operation, paths, template))
    return out


def subscription_resolvers(none_data_source: str) -> dict[str, dict[str, Any]]:
    """The guard resolver on each per-user subscription field (a NONE data source, no Lambda)."""
    return {path: {"dataSourceName": none_data_source, "kind": "UNIT",
                   "requestMappingTemplate": SUBSCRIPTION_GUARD_REQUEST,
                   "responseMappingTemplate": SUBSCRIPTION_GUARD_RESPONSE}
            for path in GUARDED_SUBSCRIPTIONS}


def subscribed_mutations(schema: Any) -> dict[str, list[str]]:
    """Subscription field -> the mutations that fire it, read from ``@aws_subscribe``."""
    out: dict[str, list[str]] = {}
    for name, field in schema.subscription_type.fields.items():
        for directive in getattr(field.ast_node, "directives", None) or []:
            if directive.name.value != "aws_subscribe":
                continue
            for argument in directive.arguments:
                if argument.name.value == "mutations":
                    out[name] = [value.value for value in argument.value.values]
    return out
