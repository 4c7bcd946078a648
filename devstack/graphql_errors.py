"""Client-facing text for graphql-core's own errors: field names and rules, never a value.

graphql-core quotes the offending input in its messages (``found: {...}``,
``String cannot represent a non string value: 5``, ``Unexpected Name "x"``), so a
login with one unknown field echoed the whole input, password included, to the
client. The gateway passes every such message through ``public_message``, which
rebuilds it from the parts that come from the schema or the query's shape (a
variable's name, a path of declared fields, a type name, a line and column) and a
fixed phrase for the rule that was broken. Messages about the query's shape
(an unknown field to select, a missing fragment) carry no input and stay as they are.
"""

from __future__ import annotations

import re

from graphql import GraphQLError
from graphql.language import ObjectFieldNode, ValueNode

# (substring of graphql-core's message, what it means), first match wins.
RULES: tuple[tuple[str, str], ...] = (
    ("unknown field", "has a field its type does not declare"),
    ("is not defined by type", "has a field its type does not declare"),
    ("to be an object", "must be an input object"),
    ("to include required field", "is missing a required field"),
    ("to be provided", "is required"),
    ("of required type", "is required"),
    ("was not provided", "is required"),
    ("must not be null", "must not be null"),
    ("not to be None", "must not be null"),
    ("not to be null", "must not be null"),
    ("cannot represent", "has the wrong type"),
    ("nested too deeply", "is nested too deeply"),
)
_NAME = r"[_A-Za-z][_0-9A-Za-z]*"
# Read only at the start of the rule's text, before any quoted input can come.
_EXPECTED = re.compile(rf"^(?:Expected (?:a )?value of (?:non-null )?type '(\[*{_NAME}[\]!]*)'"
                       rf"|({_NAME}) cannot represent)")
# A required field the type declares, named before the sender's value is quoted.
_REQUIRED = re.compile(rf"to include required field '({_NAME})'")
_VARIABLE = re.compile(rf"^Variable '\$({_NAME})' has invalid (?:default )?value(?: at ([^:]*))?:")
_VARIABLE_OTHER = re.compile(rf"^Variable '\$({_NAME})' (?=of required type|of non-null type)")
_PATH = re.compile(rf"(?:\.{_NAME}|\[\d+\])+")


def public_message(error: GraphQLError) -> str:
    """The message a client may see for ``error``: it names fields and rules only."""
    text = error.message
    if text.startswith("Syntax Error"):
        return _syntax(error)
    variable = _VARIABLE.match(text) or _VARIABLE_OTHER.match(text)
    if variable:
        path = (variable.group(2) or "") if variable.re is _VARIABLE else ""
        where = f" at {path}" if _PATH.fullmatch(path) else ""
        rule = text[variable.end():] if variable.re is _VARIABLE else text
        return f"Variable '${variable.group(1)}'{where} {rule_of(rule.strip())}."
    if any(isinstance(node, ValueNode | ObjectFieldNode) for node in error.nodes or ()):
        return f"Argument value{_location(error)} {rule_of(text)}."
    return text


def rule_of(text: str) -> str:
    """A fixed phrase for the rule ``text`` reports, with the expected type when it names one.

    Only the words before the first quoted value are read, so nothing the sender
    wrote can turn into a phrase or a type name here.
    """
    head = re.split(r"\bfound\b|: ", text, maxsplit=1)[0]
    phrase = next((meaning for needle, meaning in RULES if needle in head), "is not valid")
    expected = _EXPECTED.match(head)
    name = expected and (expected.group(1) or expected.group(2))
    required = _REQUIRED.search(head)
    if required:
        phrase = f"{phrase} ({required.group(1)})"
    return f"{phrase} (expected {name})" if name else phrase


def _syntax(error: GraphQLError) -> str:
    """graphql-core's description up to the first quoted token (the token may be a literal value)."""
    head = re.split(r"[\"'`]|\bfound\b", error.message, maxsplit=1)[0].rstrip(" :,.")
    return f"{head}{_location(error)}."


def _location(error: GraphQLError) -> str:
    locations = error.locations or []
    if not locations:
        return ""
    return f" at line {locations[0].line}, column {locations[0].column}"
