"""The browser tests' fixtures (a served aidmesh, the system Chromium), for the sign-in
pages' tests here."""

from tests.browser.conftest import browser, site

__all__ = ["browser", "site"]
