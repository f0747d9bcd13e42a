"""The HTTP API: dependencies, the error mapping and thin routes.

Each route validates, runs one command and answers with a public model.
"""
