"""aidmesh realtime: the event bus and the websocket gateway.

It knows events and scopes, not incidents and claims.
"""
