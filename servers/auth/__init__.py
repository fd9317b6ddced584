"""Access control for the suite over HTTP: OAuth 2.1 resource-server mode (JWTs), a static
bearer token, scopes per tool, a per-client rate limit on flight actions, and the client
identity in every log line. Off by default; `servers.http.HttpSettings.access` turns it on.

* `settings` - `AccessSettings`, the knobs (`servers.config.ServeSettings` exposes them).
* `tokens` - the SDK `TokenVerifier`s: `JwtVerifier` (PyJWT, JWKS file or URL), `StaticTokenVerifier`.
* `gate` - `AccessGate`, the ASGI layer (SDK middleware: 401/403, `WWW-Authenticate`), and the
  RFC 9728 metadata routes.
* `scopes` - `ScopePolicy` declared per server; enforced in `servers.validation`.
* `ratelimit` - the per-client sliding window.
* `identity` - `current_client()`.
"""
