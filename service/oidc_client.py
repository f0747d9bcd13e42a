"""The relying-party side of OpenID Connect, through Authlib: a provider's discovery
document, the authorization URL of a code flow with PKCE (S256), state and nonce, and
the exchange of the code for an ID token whose signature (the provider's JWKS), issuer,
audience, expiry and nonce are checked.

`ProviderClient` is the seam; `AuthlibProviders` the real one, built in `create_app`.
Nothing here logs a code, a token, a verifier or the client's secret."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

with warnings.catch_warnings():
    # Authlib's client would rather have the httpx2 fork and warns, at every start, when
    # it finds httpx (which the whole service uses) instead.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError

SCOPE = "openid email profile groups"
# How long a discovery document and its keys are trusted before being fetched again.
METADATA_TTL_S = 300.0
# Clock skew allowed between this server and the provider when checking exp and iat.
LEEWAY_S = 60


class ProviderError(Exception):
    """The provider could not be reached, refused the code, or answered something that
    fails a check. The message names what failed, never a secret."""


@dataclass(frozen=True)
class ProviderConfig:
    issuer: str
    client_id: str
    client_secret: str


class ProviderClient(Protocol):
    async def authorization_url(
        self, provider: ProviderConfig, redirect_uri: str, state: str, nonce: str, verifier: str
    ) -> str: ...

    async def claims(
        self, provider: ProviderConfig, redirect_uri: str, code: str, verifier: str, nonce: str
    ) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


class AuthlibProviders:
    """Talks to any number of providers, with one HTTP client and a short cache of their
    discovery documents and key sets."""

    def __init__(self, timeout_s: float = 10.0) -> None:
        self.timeout_s = timeout_s
        # Built at the first fetch: building one loads the system's CA certificates (some
        # 20 ms at every start), which a server nobody signs in to through a provider
        # never needs.
        self._client: httpx.AsyncClient | None = None
        self._metadata: dict[str, tuple[float, dict[str, Any]]] = {}
        self._keys: dict[str, tuple[float, dict[str, Any]]] = {}

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False)
        return self._client

    async def metadata(self, issuer: str, *, fresh: bool = False) -> dict[str, Any]:
        """The provider's discovery document, whose `issuer` must be the configured one."""
        cached = self._metadata.get(issuer)
        if cached and not fresh and time.monotonic() - cached[0] < METADATA_TTL_S:
            return cached[1]
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = await self._get_json(url, "discovery document")
        if document.get("issuer") != issuer:
            raise ProviderError(
                "the discovery document names another issuer than the one configured"
            )
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(document.get(key), str):
                raise ProviderError(f"the discovery document has no {key}")
        self._metadata[issuer] = (time.monotonic(), document)
        return document

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = await self._http().get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise ProviderError(f"the provider's {what} could not be fetched ({exc})") from None
        if response.status_code != 200:
            raise ProviderError(f"the provider's {what} answered {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise ProviderError(f"the provider's {what} is not JSON") from None
        if not isinstance(body, dict):
            raise ProviderError(f"the provider's {what} is not a JSON object")
        return body

    def _oauth(self, provider: ProviderConfig, redirect_uri: str) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=provider.client_id,
            client_secret=provider.client_secret,
            scope=SCOPE,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=self.timeout_s,
        )

    async def authorization_url(
        self, provider: ProviderConfig, redirect_uri: str, state: str, nonce: str, verifier: str
    ) -> str:
        document = await self.metadata(provider.issuer)
        async with self._oauth(provider, redirect_uri) as oauth:
            url, _ = oauth.create_authorization_url(
                document["authorization_endpoint"],
                state=state,
                code_verifier=verifier,
                nonce=nonce,
            )
        return str(url)

    async def claims(
        self, provider: ProviderConfig, redirect_uri: str, code: str, verifier: str, nonce: str
    ) -> dict[str, Any]:
        """The person's claims: the checked ID token's, completed by the userinfo
        endpoint's (where providers put groups and profile claims) for the same subject."""
        document = await self.metadata(provider.issuer)
        async with self._oauth(provider, redirect_uri) as oauth:
            try:
                token = await oauth.fetch_token(
                    document["token_endpoint"],
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=verifier,
                )
            except (OAuthError, httpx.HTTPError) as exc:
                raise ProviderError(f"the provider refused the code ({_error_name(exc)})") from None
            id_token = token.get("id_token")
            if not isinstance(id_token, str):
                raise ProviderError("the provider answered no ID token")
            claims = await self._checked_id_token(provider, document, id_token, nonce, token)
            userinfo = await self._userinfo(oauth, document, claims["sub"])
        return {**userinfo, **claims}

    async def _checked_id_token(
        self,
        provider: ProviderConfig,
        document: dict[str, Any],
        id_token: str,
        nonce: str,
        token: dict[str, Any],
    ) -> dict[str, Any]:
        algorithms = document.get("id_token_signing_alg_values_supported") or ["RS256"]
        # Never "none", never a symmetric algorithm keyed by a public key set.
        algorithms = [
            a for a in algorithms if isinstance(a, str) and a[:2] in ("RS", "PS", "ES", "Ed")
        ]
        registry = JWSRegistry(algorithms=algorithms or ["RS256"], strict_check_header=False)
        try:
            try:
                keys = KeySet.import_key_set(await self._key_set(document))  # type: ignore[arg-type]
                decoded = jwt.decode(id_token, key=keys, registry=registry)
            except JoseError:
                # A provider that rotated its keys: fetch them again, once.
                keys = KeySet.import_key_set(await self._key_set(document, fresh=True))  # type: ignore[arg-type]
                decoded = jwt.decode(id_token, key=keys, registry=registry)
            checked = CodeIDToken(
                decoded.claims,
                decoded.header,
                {
                    "iss": {"essential": True, "value": provider.issuer},
                    "aud": {"essential": True, "value": provider.client_id},
                    "nonce": {"essential": True},
                },
                {
                    "nonce": nonce,
                    "client_id": provider.client_id,
                    "access_token": token.get("access_token"),
                },
            )
            checked.validate(leeway=LEEWAY_S)
        except (JoseError, ValueError) as exc:
            raise ProviderError(f"the ID token fails a check ({_error_name(exc)})") from None
        claims = dict(checked)
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise ProviderError("the ID token names no subject")
        return claims

    async def _key_set(self, document: dict[str, Any], *, fresh: bool = False) -> dict[str, Any]:
        uri = document["jwks_uri"]
        cached = self._keys.get(uri)
        if cached and not fresh and time.monotonic() - cached[0] < METADATA_TTL_S:
            return cached[1]
        keys = await self._get_json(uri, "key set")
        self._keys[uri] = (time.monotonic(), keys)
        return keys

    async def _userinfo(
        self, oauth: AsyncOAuth2Client, document: dict[str, Any], subject: str
    ) -> dict[str, Any]:
        endpoint = document.get("userinfo_endpoint")
        if not isinstance(endpoint, str):
            return {}
        try:
            response = await oauth.get(endpoint)
        except httpx.HTTPError:
            return {}
        if response.status_code != 200:
            return {}
        try:
            info = response.json()
        except ValueError:
            return {}
        # Claims about someone else are no claims about this person (OIDC Core 5.3.2).
        if not isinstance(info, dict) or info.get("sub") != subject:
            return {}
        return info


def _error_name(exc: Exception) -> str:
    """A failure's kind and description, without the request that carried a secret."""
    error = getattr(exc, "error", None)
    if isinstance(error, str):
        return error
    return type(exc).__name__
