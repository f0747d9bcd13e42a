"""aidmesh's benchmarks: fan-out latency, memory per connection, claim throughput and
declaration latency, with the naive FastAPI broadcast as the yardstick.

Run `python -m bench` (the default, bounded matrix) or `python -m bench --full`.
Every process a run starts is ended by its PID when the run ends, also on error or Ctrl-C.
"""
