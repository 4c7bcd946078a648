"""Auth: passwords, tokens, register/login/refresh, and the AppSync Lambda authorizer.

Kept empty on purpose: ``chalicelib.auth.entry`` is imported by the authorizer
Lambda, and anything imported here would be paid for on its cold start.
"""
