"""The pure core of aidmesh: lifecycles, quantity arithmetic, ring selection and event names.

Nothing here does I/O or imports a framework; `now` is always an argument.
"""
