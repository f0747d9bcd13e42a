"""Adapters behind the service's seams (`service.claim_paths`, `service.tokens`) for one
backend each, chosen in `create_app` from the settings."""
