"""The browser's side of signing in with an OpenID Connect provider: the buttons the
sign-in form shows, the trip to the provider (authorization code flow with PKCE S256,
state and nonce) and the way back, which ends in the same session cookie a password
sign-in sets, or in a page that says why not, in the person's language (its messages
are the pages' catalogues', under signin_result.*).

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
from service.web.languages import LANGUAGE_COOKIE, choose_language, message
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
            request,
            status.HTTP_404_NOT_FOUND,
            "signin_result.no_provider_title",
            "signin_result.no_provider_detail",
        )
    try:
        url = await parts.providers.authorization_url(
            begun.provider, _redirect_uri(request), begun.state, begun.nonce, begun.verifier
        )
    except ProviderError as exc:
        return _page(
            request,
            status.HTTP_502_BAD_GATEWAY,
            "signin_result.unreachable_title",
            "signin_result.reason",
            reason=str(exc),
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
        title = "signin_result.provider_refused_title"
        if not _ERROR_CODE.match(error):
            return _refused(
                request, status.HTTP_401_UNAUTHORIZED, title, "signin_result.provider_error"
            )
        return _refused(
            request,
            status.HTTP_401_UNAUTHORIZED,
            title,
            "signin_result.provider_answered",
            code=error,
        )
    kept = request.cookies.get(STATE_COOKIE, "")
    if not _STATE.match(state) or not kept or not hmac.compare_digest(kept, state):
        return _refused(
            request,
            status.HTTP_400_BAD_REQUEST,
            "signin_result.cannot_finish_title",
            "signin_result.foreign_state",
        )
    try:
        returning = await parts.executor.run(SYSTEM, oidc.take_pending, state)
    except NotFound:
        return _refused(
            request,
            status.HTTP_400_BAD_REQUEST,
            "signin_result.cannot_finish_title",
            "signin_result.unknown_state",
        )
    if returning is None:
        return _refused(
            request,
            status.HTTP_400_BAD_REQUEST,
            "signin_result.expired_title",
            "signin_result.expired_detail",
        )
    if not code:
        return _refused(
            request,
            status.HTTP_400_BAD_REQUEST,
            "signin_result.no_code_title",
            "signin_result.start_again",
        )
    try:
        claims = await parts.providers.claims(
            returning.provider, _redirect_uri(request), code, returning.verifier, returning.nonce
        )
    except ProviderError as exc:
        return _refused(
            request,
            status.HTTP_502_BAD_GATEWAY,
            "signin_result.answer_refused_title",
            "signin_result.reason",
            reason=str(exc),
        )
    try:
        started = await parts.executor.run(
            SYSTEM, oidc.sign_in_with_claims, returning.provider_id, claims
        )
    except oidc.NotMapped:
        return _refused(
            request,
            status.HTTP_403_FORBIDDEN,
            "signin_result.not_mapped_title",
            "signin_result.not_mapped_detail",
        )
    except (Forbidden, Conflict) as exc:
        return _refused(
            request,
            status.HTTP_403_FORBIDDEN,
            "signin_result.cannot_sign_in_title",
            "signin_result.reason",
            reason=str(exc.detail),
        )
    response = RedirectResponse(returning.next_path, status_code=status.HTTP_303_SEE_OTHER)
    set_session_cookies(response, request, started.secret, started.csrf_token)
    _forget_state(response)
    return response


def _redirect_uri(request: Request) -> str:
    return str(request.base_url).rstrip("/") + oidc.CALLBACK_PATH


def _forget_state(response: Response) -> None:
    response.delete_cookie(STATE_COOKIE, path=_STATE_COOKIE_PATH)


def _refused(
    request: Request, status_code: int, title_key: str, detail_key: str, **params: str
) -> HTMLResponse:
    response = _page(request, status_code, title_key, detail_key, **params)
    _forget_state(response)
    return response


def _page(
    request: Request, status_code: int, title_key: str, detail_key: str, **params: str
) -> HTMLResponse:
    """A small page of the site that says what went wrong, with the way back, in the
    language the browser asks for; `params` (a provider's words) go into the detail as
    they are."""
    language = choose_language(
        request.headers.get("accept-language"), request.cookies.get(LANGUAGE_COOKIE)
    )
    title = message(language, title_key)
    detail = message(language, detail_key, params)
    back = message(language, "signin_result.back")
    body = f"""<!doctype html>
<html lang="{language}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · aidmesh</title>
<link rel="stylesheet" href="/static/aidmesh.css">
</head><body><main id="main">
<div class="panel sign-in" id="sign-in-refused" role="alert">
<h1>{html.escape(title)}</h1>
<p>{html.escape(detail)}</p>
<p><a href="/board" id="back-to-sign-in">{html.escape(back)}</a></p>
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
