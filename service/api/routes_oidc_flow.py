"""The browser's side of signing in with an OpenID Connect provider: the buttons the
sign-in form shows, the trip to the provider (authorization code flow with PKCE S256,
state and nonce) and the way back, which ends in the same session cookie a password
sign-in sets, or in a page that says why not.

These are navigations, not API calls: they answer redirects and small HTML pages, and
stay out of the API's schema. The state travels in the address and in a short-lived
HttpOnly cookie of this browser, which must agree; the server keeps only its hash, with
the nonce and the PKCE verifier, and uses it once."""

from __future__ import annotations

import hmac
import html
import re

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse

from service.api.deps import Parts
from service.api.routes_accounts import set_session_cookies
from service.commands import oidc
from service.domain.actors import SYSTEM
from service.domain.errors import Conflict, Forbidden, NotFound
from service.oidc_client import ProviderError
from service.oidc_models import SignInProviderButton
from service.web.routes import CONTENT_SECURITY_POLICY

router = APIRouter(include_in_schema=False)

STATE_COOKIE = "aidmesh_oidc_state"
_STATE_COOKIE_PATH = "/auth/oidc"
# A provider's error code (RFC 6749 4.1.2.1) is a short token; anything else is not shown.
_ERROR_CODE = re.compile(r"^[a-z_]{1,64}$")
_STATE = re.compile(r"^[A-Za-z0-9_-]{20,100}$")


@router.get("/auth/oidc/providers", response_model=list[SignInProviderButton])
async def provider_buttons(parts: Parts) -> list[SignInProviderButton]:
    """The providers people may sign in with, for the sign-in form's buttons."""
    return await parts.executor.read(SYSTEM, oidc.buttons)


@router.get("/auth/oidc/{provider_id}/start")
async def start_sign_in(
    provider_id: int, request: Request, parts: Parts, next: str = "/board"
) -> Response:
    """Off to the provider, with a fresh state, nonce and PKCE challenge."""
    try:
        begun = await parts.executor.run(SYSTEM, oidc.begin_sign_in, provider_id, next)
    except NotFound:
        return _page(
            status.HTTP_404_NOT_FOUND, "No such sign-in provider", "Go back and choose again."
        )
    try:
        url = await parts.providers.authorization_url(
            begun.provider, _redirect_uri(request), begun.state, begun.nonce, begun.verifier
        )
    except ProviderError as exc:
        return _page(
            status.HTTP_502_BAD_GATEWAY, "The sign-in provider cannot be reached", str(exc)
        )
    response = RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        STATE_COOKIE,
        begun.state,
        # Until the browser closes: the server's record of the state is what expires,
        # so a late return is told it took too long rather than that it is a stranger.
        path=_STATE_COOKIE_PATH,
        httponly=True,
        samesite="lax",  # sent on the provider's redirect back, a top-level GET
        secure=request.url.scheme == "https",
    )
    return response


@router.get(oidc.CALLBACK_PATH)
async def finish_sign_in(
    request: Request,
    parts: Parts,
    state: str = "",
    code: str = "",
    error: str = "",
) -> Response:
    """Back from the provider: the state must be this browser's and unused, the code
    turns into a checked ID token, and the provider's rules must map the person."""
    if error:
        shown = error if _ERROR_CODE.match(error) else "an error"
        return _refused(
            status.HTTP_401_UNAUTHORIZED,
            "The provider did not sign you in",
            f"It answered {shown}.",
        )
    kept = request.cookies.get(STATE_COOKIE, "")
    if not _STATE.match(state) or not kept or not hmac.compare_digest(kept, state):
        return _refused(
            status.HTTP_400_BAD_REQUEST,
            "This sign-in cannot be finished",
            "It did not start in this browser, or its address was changed. Start again.",
        )
    try:
        returning = await parts.executor.run(SYSTEM, oidc.take_pending, state)
    except NotFound:
        return _refused(
            status.HTTP_400_BAD_REQUEST,
            "This sign-in cannot be finished",
            "It is unknown or was used already. Start again.",
        )
    if returning is None:
        return _refused(
            status.HTTP_400_BAD_REQUEST,
            "This sign-in has expired",
            "The trip to the provider and back took too long. Start again.",
        )
    if not code:
        return _refused(status.HTTP_400_BAD_REQUEST, "The provider sent no code", "Start again.")
    try:
        claims = await parts.providers.claims(
            returning.provider, _redirect_uri(request), code, returning.verifier, returning.nonce
        )
    except ProviderError as exc:
        return _refused(
            status.HTTP_502_BAD_GATEWAY, "The sign-in provider's answer was refused", str(exc)
        )
    try:
        started = await parts.executor.run(
            SYSTEM, oidc.sign_in_with_claims, returning.provider_id, claims
        )
    except oidc.NotMapped:
        return _refused(
            status.HTTP_403_FORBIDDEN,
            "Your account is not yet mapped",
            "The provider knows you, but none of its groups or claims gives you a city and a"
            " role here yet. Ask your city's manager to map you, then sign in again.",
        )
    except (Forbidden, Conflict) as exc:
        return _refused(status.HTTP_403_FORBIDDEN, "You cannot sign in this way", str(exc.detail))
    response = RedirectResponse(returning.next_path, status_code=status.HTTP_303_SEE_OTHER)
    set_session_cookies(response, request, started.secret, started.csrf_token)
    _forget_state(response)
    return response


def _redirect_uri(request: Request) -> str:
    return str(request.base_url).rstrip("/") + oidc.CALLBACK_PATH


def _forget_state(response: Response) -> None:
    response.delete_cookie(STATE_COOKIE, path=_STATE_COOKIE_PATH)


def _refused(status_code: int, title: str, detail: str) -> HTMLResponse:
    response = _page(status_code, title, detail)
    _forget_state(response)
    return response


def _page(status_code: int, title: str, detail: str) -> HTMLResponse:
    """A small page of the site that says what went wrong, with the way back."""
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · aidmesh</title>
<link rel="stylesheet" href="/static/aidmesh.css">
</head><body><main id="main">
<div class="panel sign-in" id="sign-in-refused" role="alert">
<h1>{html.escape(title)}</h1>
<p>{html.escape(detail)}</p>
<p><a href="/board" id="back-to-sign-in">Back to sign-in</a></p>
</div></main></body></html>
"""
    return HTMLResponse(
        body,
        status_code=status_code,
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )
