"""Where the map's geography comes from: Natural Earth's 1:50m countries and land, as
TopoJSON, copied unchanged from the npm package `world-atlas` (`make geography` fetches
it again from the registry and rewrites this record). Natural Earth is in the public
domain; world-atlas is under the ISC licence (its notice is below)."""

from __future__ import annotations

PACKAGE = "world-atlas"
VERSION = "2.0.2"
SOURCE_FILE = "countries-50m.json"
ASSET = "natural-earth-50m.json"  # its name under service/web/static
SHA256 = "04342cdc1e3016bcd7db1630de95684d67b79fe3c8c460321e87aef469502394"

LICENCE = """world-atlas: Copyright 2013-2019 Michael Bostock

Permission to use, copy, modify, and/or distribute this software for any purpose
with or without fee is hereby granted, provided that the above copyright notice
and this permission notice appear in all copies.

Natural Earth (naturalearthdata.com): public domain."""
