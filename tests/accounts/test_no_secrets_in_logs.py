"""No password, sign-up code, session id, CSRF token, TOTP secret or code in any log
line (issue #19): a served aidmesh, logging at debug level, goes through invitation,
sign-up, a failed and a good sign-in, a write and a websocket on the session, setting
up a second factor, a sign-in with a wrong and a good code, a password change and
sign-out, and a machine token issued, used and rotated; then its whole log is searched
for each secret."""

from __future__ import annotations

import asyncio
import time

import httpx
import pyotp

from service.sessions import CSRF_COOKIE, SESSION_COOKIE
from tests.accounts.people import API, PASSWORD
from tests.browser.conftest import Site
from tests.realtime.live_client import open_ws

WRONG_PASSWORD = "wrong-guess-violet-harbour-93"
NEW_PASSWORD = "copper-meadow-58-quietly-hums"


def _served_at_debug(site: Site) -> None:
    site.server.stop()
    site.server.log_path.unlink(missing_ok=True)
    site.server.env["AIDMESH_LOG_LEVEL"] = "debug"
    site.server.start()


async def _welcome(site: Site, session: str) -> str:
    ws = await open_ws(
        site.base_url.replace("http", "ws") + "/ws",
        additional_headers={"Cookie": f"{SESSION_COOKIE}={session}", "Origin": site.base_url},
    )
    try:
        return str(await asyncio.wait_for(ws.recv(), timeout=10))
    finally:
        await ws.close()


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_no_secret_of_sign_in_reaches_the_log(site: Site) -> None:
    _served_at_debug(site)
    admin = {"Authorization": f"Bearer {site.world.token('admin')}"}
    base = site.base_url + API
    with httpx.Client(timeout=10.0) as http:
        r = http.post(
            f"{base}/people",
            json={
                "email": "logged@nairobi.example",
                "display_name": "Logged",
                "roles": ["manager"],
                "city_id": site.world.city_ids["nairobi"],
            },
            headers=admin,
        )
        assert r.status_code == 201, r.text
        code = r.json()["invite_code"]
        r = http.post(f"{base}/auth/sign-up", json={"code": code, "password": PASSWORD})
        assert r.status_code == 200, r.text
        credentials = {"email": "logged@nairobi.example", "password": WRONG_PASSWORD}
        assert http.post(f"{base}/auth/sign-in", json=credentials).status_code == 401
        r = http.post(f"{base}/auth/sign-in", json={**credentials, "password": PASSWORD})
        assert r.status_code == 200, r.text
        session, csrf = r.cookies[SESSION_COOKIE], r.cookies[CSRF_COOKIE]
        http.cookies.clear()
        cookie = {"Cookie": f"{SESSION_COOKIE}={session}"}
        r = http.post(
            f"{base}/incidents",
            json={"incident_type": "flood", "title": "Logged flood"},
            headers={**cookie, "X-CSRF-Token": csrf},
        )
        assert r.status_code == 201, r.text
        assert http.post(f"{base}/incidents", json={}, headers=cookie).status_code == 403
        assert '"welcome"' in asyncio.run(_welcome(site, session))
        write = {**cookie, "X-CSRF-Token": csrf}
        r = http.post(f"{base}/auth/totp/enrol", headers=write)
        assert r.status_code == 200, r.text
        totp_secret, totp_uri = r.json()["secret"], r.json()["otpauth_uri"]
        totp = pyotp.TOTP(totp_secret)
        confirm_code = totp.now()
        r = http.post(f"{base}/auth/totp/confirm", json={"code": confirm_code}, headers=write)
        assert r.status_code == 200, r.text
        r = http.post(f"{base}/auth/sign-out", headers=write)
        assert r.status_code == 200, r.text
        # The next step's code (one step of drift is allowed): not the one just used.
        sign_in_code = totp.at(time.time() + 30)
        wrong_code = f"{(int(sign_in_code) + 1) % 1_000_000:06d}"
        good = {**credentials, "password": PASSWORD}
        r = http.post(f"{base}/auth/sign-in", json={**good, "code": wrong_code})
        assert r.status_code == 401, r.text
        r = http.post(f"{base}/auth/sign-in", json={**good, "code": sign_in_code})
        assert r.status_code == 200, r.text
        later = {"Cookie": f"{SESSION_COOKIE}={r.cookies[SESSION_COOKIE]}"}
        later_write = {**later, "X-CSRF-Token": r.json()["csrf_token"]}
        http.cookies.clear()
        change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        r = http.post(f"{base}/auth/password", json=change, headers=later_write)
        assert r.status_code == 200, r.text
        r = http.post(f"{base}/auth/sign-out", headers=later_write)
        assert r.status_code == 200, r.text
        # A machine's token: issued, used, rotated, used again.
        token_body = {"role": "responder", "city_id": site.world.city_ids["nairobi"]}
        r = http.post(f"{base}/tokens", json={**token_body, "scopes": ["claims"]}, headers=admin)
        assert r.status_code == 201, r.text
        issued_token = r.json()["token"]
        assert http.get(f"{base}/me", headers=_bearer(issued_token)).status_code == 200
        r = http.post(f"{base}/tokens/{r.json()['id']}/rotate", headers=admin)
        assert r.status_code == 200, r.text
        rotated_token = r.json()["token"]
        assert http.get(f"{base}/me", headers=_bearer(rotated_token)).status_code == 200
        assert http.get(f"{base}/me", headers=_bearer(issued_token)).status_code == 401
    site.server.stop()
    log = site.server.log_path.read_text(encoding="utf-8", errors="replace")
    # The run was logged (so the search below searched something)...
    for seen in (
        "/api/v1/auth/sign-in",
        "/api/v1/auth/sign-up",
        "/api/v1/incidents",
        "/api/v1/auth/totp/enrol",
        "/api/v1/auth/totp/confirm",
        "/api/v1/auth/password",
        "/rotate",
    ):
        assert seen in log, seen
    # ...and no secret is in it, whole or as its first half.
    secrets = {
        "password": PASSWORD,
        "wrong password": WRONG_PASSWORD,
        "new password": NEW_PASSWORD,
        "issued token": issued_token,
        "rotated token": rotated_token,
        "sign-up code": code,
        "session id": session,
        "CSRF token": csrf,
        "TOTP secret": totp_secret,
        "otpauth URI": totp_uri,
    }
    for what, secret in secrets.items():
        for piece in (secret, secret[: len(secret) // 2]):
            assert piece not in log, f"the {what} is in the log"
    # A code is six digits, which a log's times and ids may hold by chance: it is looked
    # for as a JSON value or a query or form value, as a body or a URL would carry it.
    for what, code in {
        "confirming code": confirm_code,
        "sign-in code": sign_in_code,
        "wrong code": wrong_code,
    }.items():
        for shape in (f'"{code}"', f"code={code}", f"'{code}'"):
            assert shape not in log, f"the {what} is in the log"
