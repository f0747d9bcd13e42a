"""aidmesh service: the HTTP API, domain commands and persistence of the mutual-aid network."""
