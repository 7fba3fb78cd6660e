"""Who is asking, and what they may do: roles, the request context, dev tokens and OIDC."""
