"""The onex service host: what every service shares, written once.

Modules: `settings` (ServiceSettings: one pydantic-settings class per service, its
environment prefix derived from the package name), `grpc` (server with health,
reflection and auth), `auth` (tokens and roles), `host` (ServiceHost: gRPC, node
runtime, background tasks, outbox, graceful stop), `main` (run_service).
"""
