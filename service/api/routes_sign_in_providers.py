"""Sign-in providers (OpenID Connect): a city's own, set by its managers or the admin, or
a network's, set by the admin; each with the rules that map the provider's claims or
groups to a city and roles. The client's secret is written, never answered."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from service.api.deps import CurrentActor, IdPath, Parts
from service.commands import oidc
from service.oidc_models import SignInProviderPublic, SignInProviderPut
from service.persistence.tables import SignInProvider

router = APIRouter(tags=["sign-in providers"])

CITY = "/cities/{city_id}/sign-in-provider"
NETWORK = "/networks/{network_id}/sign-in-provider"


def _public(provider: SignInProvider, request: Request) -> SignInProviderPublic:
    return oidc.provider_public(provider, str(request.base_url))


@router.get(CITY, response_model=SignInProviderPublic)
async def get_city_provider(
    city_id: IdPath, actor: CurrentActor, parts: Parts, request: Request
) -> SignInProviderPublic:
    """The city's own provider, with the redirect URI to register at the provider."""
    return _public(await parts.executor.read(actor, oidc.city_provider, city_id), request)


@router.put(CITY, response_model=SignInProviderPublic)
async def set_city_provider(
    city_id: IdPath, body: SignInProviderPut, actor: CurrentActor, parts: Parts, request: Request
) -> SignInProviderPublic:
    """Set or replace the city's own provider (its managers, or the admin). Each rule maps
    a claim's value (or a group held) to roles in this city; a person no rule matches
    gets no access. `client_secret` is needed the first time and kept when left out."""
    provider = await parts.executor.run(actor, oidc.set_city_provider, city_id, body)
    return _public(provider, request)


@router.delete(CITY, status_code=status.HTTP_204_NO_CONTENT)
async def remove_city_provider(city_id: IdPath, actor: CurrentActor, parts: Parts) -> None:
    """Remove the city's provider: its button goes from the sign-in form."""
    await parts.executor.run(actor, oidc.remove_city_provider, city_id)


@router.get(NETWORK, response_model=SignInProviderPublic)
async def get_network_provider(
    network_id: IdPath, actor: CurrentActor, parts: Parts, request: Request
) -> SignInProviderPublic:
    """The network's provider (the admin's to read and set)."""
    return _public(await parts.executor.read(actor, oidc.network_provider, network_id), request)


@router.put(NETWORK, response_model=SignInProviderPublic)
async def set_network_provider(
    network_id: IdPath,
    body: SignInProviderPut,
    actor: CurrentActor,
    parts: Parts,
    request: Request,
) -> SignInProviderPublic:
    """Set or replace one provider for a whole network (the admin): each rule names the
    member city (`city_id`) it maps to."""
    provider = await parts.executor.run(actor, oidc.set_network_provider, network_id, body)
    return _public(provider, request)


@router.delete(NETWORK, status_code=status.HTTP_204_NO_CONTENT)
async def remove_network_provider(network_id: IdPath, actor: CurrentActor, parts: Parts) -> None:
    """Remove the network's provider."""
    await parts.executor.run(actor, oidc.remove_network_provider, network_id)
