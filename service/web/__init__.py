"""The browser pages: the live incident board and the responder and manager consoles.

Plain HTML, CSS and ES modules shipped in `static/`, served by aidmesh itself.
"""
