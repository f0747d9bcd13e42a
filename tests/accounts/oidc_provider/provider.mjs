// A real OpenID Connect provider (the certified `oidc-provider` package) for aidmesh's
// sign-in tests, on a loopback port. Its configuration comes as JSON in the environment
// variable OIDC_TEST_CONFIG: { port, clients: [...], people: { login: claims } }.
// People sign in on its development login form with their login and any password, and
// are asked no consent: the test client is first-party.

import Provider from "oidc-provider";

const config = JSON.parse(process.env.OIDC_TEST_CONFIG);
const issuer = `http://127.0.0.1:${config.port}`;
const people = config.people;

const provider = new Provider(issuer, {
  clients: config.clients.map((client) => ({
    grant_types: ["authorization_code"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
    ...client,
  })),
  // PKCE for every client, not only public ones.
  pkce: { required: () => true },
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["name", "preferred_username"],
    groups: ["groups"],
  },
  scopes: ["openid", "email", "profile", "groups"],
  cookies: { keys: [config.cookie_key] },
  ttl: { IdToken: 600, AccessToken: 600, AuthorizationCode: 60, Interaction: 600, Session: 3600, Grant: 3600 },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    const claims = people[id];
    if (!claims) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...claims }; } };
  },
  // First-party: every scope asked is granted without a consent page.
  async loadExistingGrant(ctx) {
    const grantId =
      ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope("openid email profile groups");
    await grant.save();
    return grant;
  },
});

// Quiet: what happens is seen from the test and from aidmesh's side.
provider.listen(config.port, "127.0.0.1", () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
