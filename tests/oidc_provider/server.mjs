// A real OpenID Provider for the test suite, on loopback only. Configured by environment:
//   OP_PORT, OP_CLIENT_ID, OP_CLIENT_SECRET, OP_REDIRECT_URI, OP_AUDIENCE,
//   OP_ACCOUNTS  JSON {"<login>": {"email": "...", "groups": ["..."]}}
// Logins use oidc-provider's development interactions (any password). Access tokens are JWTs for
// the resource "urn:controlplane" (audience OP_AUDIENCE); "urn:controlplane:short-lived" issues
// 1-second tokens with the same audience, and "urn:other" tokens for another audience.
import Provider from 'oidc-provider';
import { generateKeyPair, exportJWK } from 'jose';

const port = Number(process.env.OP_PORT);
const issuer = `http://127.0.0.1:${port}`;
const accounts = JSON.parse(process.env.OP_ACCOUNTS || '{}');
const audience = process.env.OP_AUDIENCE;

const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const signingKey = { ...(await exportJWK(privateKey)), kid: 'test-op-key', use: 'sig', alg: 'RS256' };

const resources = {
  'urn:controlplane': { audience, accessTokenTTL: 300 },
  'urn:controlplane:short-lived': { audience, accessTokenTTL: 1 },
  'urn:other': { audience: 'other-api', accessTokenTTL: 300 },
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.OP_CLIENT_ID,
    client_secret: process.env.OP_CLIENT_SECRET,
    redirect_uris: [process.env.OP_REDIRECT_URI],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
  }],
  jwks: { keys: [signingKey] },
  scopes: ['openid', 'email', 'groups'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups'] },
  async findAccount(ctx, id) {
    const account = accounts[id] || {};
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: account.email, email_verified: true, groups: account.groups || [] };
      },
    };
  },
  async extraTokenClaims(ctx, token) {
    const account = accounts[token.accountId];
    return account ? { groups: account.groups || [], email: account.email } : undefined;
  },
  pkce: { required: () => false },
  features: {
    devInteractions: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:controlplane',
      useGrantedResource: () => true,
      async getResourceServerInfo(ctx, resource) {
        const info = resources[resource];
        if (!info) throw new Error(`unknown resource ${resource}`);
        return { scope: 'openid email groups', accessTokenFormat: 'jwt', ...info };
      },
    },
  },
});
provider.proxy = false;
provider.listen(port, '127.0.0.1', () => console.log(`oidc-provider listening on ${issuer}`));
