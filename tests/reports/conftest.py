"""The browser tests of the report pages use the browser suite's running service and Chromium."""

from tests.browser.conftest import browser, screenshots, site  # noqa: F401 (fixtures)
