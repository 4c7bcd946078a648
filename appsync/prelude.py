"""What AppSync predefines and a plain GraphQL parser does not know.

The deploy step parses the schema with it before touching AWS, and the local
AppSync stand-in builds its executable schema with it.
"""

# AppSync's own scalars and directives, which a plain GraphQL parser does not know.
APPSYNC_PRELUDE = """
directive @aws_api_key on FIELD_DEFINITION | OBJECT
directive @aws_iam on FIELD_DEFINITION | OBJECT
directive @aws_lambda on FIELD_DEFINITION | OBJECT
directive @aws_auth(cognito_groups: [String]) on FIELD_DEFINITION | OBJECT
directive @aws_subscribe(mutations: [String]) on FIELD_DEFINITION
scalar AWSDateTime
scalar AWSJSON
"""
