"""The operations users trigger, one write transaction each, rows and events together.

REST routes, websocket ops and scheduler jobs all call these; none of them holds a rule of its own.
"""
