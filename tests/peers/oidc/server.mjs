// ScaiKey stand-in for ScaiVault's black-box tests (127.0.0.1 only).
//
// - A real OpenID Connect provider (oidc-provider 9): discovery, JWKS,
//   client-credentials grant, JWT access tokens through resource indicators,
//   extra claims (tenant_id, groups, amr, roles, partner_id) per client.
//   RS256 and ES256 keys; which key signs and which keys are published can be
//   switched at run time (key-rotation tests).
// - A small SCIM 2.0 directory (/scim/v2/Users, /scim/v2/Groups): ListResponse
//   with startIndex/count paging and `eq` filters, protected by a bearer token
//   that this provider issued (verified with jose against its own JWKS).
// - Test-only control endpoints under /control (no authentication: this
//   process only ever listens on 127.0.0.1 during a test run).
//
// Prints "READY <port>" on stdout once listening.  Usage: node server.mjs [port]
import http from 'node:http';
import crypto from 'node:crypto';
import { Provider } from 'oidc-provider';
import * as jose from 'jose';

const TENANCY = 'urn:scailabs:scim:schemas:extension:scaikey:2.0:Tenancy';
const LIST = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
const ERR = 'urn:ietf:params:scim:api:messages:2.0:Error';
const SCIM_PAGE_MAX = 2; // small on purpose: ScaiVault must page
const VAULT_RESOURCE = 'urn:scaivault';
const DIRECTORY_RESOURCE = 'urn:scaikey:directory';

const ALL_SCOPES = ['secrets:read', 'secrets:write', 'secrets:delete', 'secrets:rotate', 'policies:read',
  'policies:write', 'audit:read', 'webhooks:manage', 'pki:read', 'pki:manage', 'dynamic:read', 'dynamic:manage',
  'federation:manage', 'identity:sync', 'admin', 'scim:read'];

// ---- keys ----
async function makeKey(alg, kid) {
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  return { ...jwk, kid, alg, use: 'sig' };
}
const keys = [
  await makeKey('RS256', 'rs-1'),
  await makeKey('ES256', 'es-1'),
  await makeKey('RS256', 'rs-2'),
  await makeKey('ES256', 'es-2'),
];
const publicJwk = (k) => {
  const { d, p, q, dp, dq, qi, ...pub } = k; // eslint-disable-line no-unused-vars
  return pub;
};

// What the tests can change at run time.
const state = {
  signKid: 'rs-1',
  published: new Set(['rs-1', 'es-1']),
  down: false,          // /jwks and discovery answer 503
  audience: 'scaivault',
  ttl: 300,
  claims: {},           // client_id → extra claims
  directory: {},        // tenant → { users: [...], groups: [...] }
  scimRequests: 0,
};

const clients = [
  { client_id: 'sa:app', client_secret: 'secret-app' },
  { client_id: 'sa:other', client_secret: 'secret-other' },
  { client_id: 'sa:ops', client_secret: 'secret-ops' },
  { client_id: 'user:admin@acme.example', client_secret: 'secret-admin' },
  { client_id: 'scaivault-sync', client_secret: 'secret-sync' },
].map((c) => ({
  ...c,
  grant_types: ['client_credentials'],
  redirect_uris: [],
  response_types: [],
  token_endpoint_auth_method: 'client_secret_basic',
  scope: ALL_SCOPES.join(' '),
}));
state.claims['sa:app'] = { tenant_id: 'tnt_a', groups: ['grp_finance'], amr: ['pwd'], roles: [] };
state.claims['sa:other'] = { tenant_id: 'tnt_b', groups: [], amr: ['pwd', 'mfa'], roles: ['tenant_admin'] };
state.claims['sa:ops'] = { tenant_id: 'tnt_a', groups: ['grp_ops'], amr: ['pwd', 'mfa'], roles: ['tenant_admin'],
  partner_id: 'ptn_1' };
state.claims['user:admin@acme.example'] = { tenant_id: 'tnt_a', groups: [], amr: ['pwd', 'mfa'], roles: [] };
state.claims['scaivault-sync'] = {};

// ---- the HTTP server (port first: the issuer is our own URL) ----
const server = http.createServer();
await new Promise((resolve) => server.listen(Number(process.argv[2] || 0), '127.0.0.1', resolve));
const port = server.address().port;
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients,
  jwks: { keys },
  scopes: ALL_SCOPES,
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (ctx, client) => (client.clientId === 'scaivault-sync' ? DIRECTORY_RESOURCE : VAULT_RESOURCE),
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => {
        const key = keys.find((k) => k.kid === state.signKid);
        return {
          scope: ALL_SCOPES.join(' '),
          audience: resource === DIRECTORY_RESOURCE ? 'scaikey-directory' : state.audience,
          accessTokenTTL: state.ttl,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: key.alg, kid: key.kid } },
        };
      },
    },
  },
  extraTokenClaims: async (ctx, token) => state.claims[token.clientId] || {},
});

const directoryJwks = () => jose.createLocalJWKSet({ keys: keys.map(publicJwk) });

// ---- SCIM ----
function scimError(res, status, detail) {
  res.writeHead(status, { 'content-type': 'application/scim+json' });
  res.end(JSON.stringify({ schemas: [ERR], status: String(status), detail }));
}

// Parses `attr eq "value" [and attr eq "value"]...` (the subset ScaiVault uses).
function parseFilter(f) {
  if (!f) return [];
  const parts = f.split(/\s+and\s+/i);
  return parts.map((p) => {
    const m = p.trim().match(/^([A-Za-z0-9:._-]+)\s+eq\s+"((?:[^"\\]|\\.)*)"$/i);
    if (!m) throw new Error(`unsupported filter: ${p}`);
    return { attr: m[1], value: m[2] };
  });
}

function attrOf(resource, attr) {
  if (attr.startsWith(`${TENANCY}:`)) return resource[TENANCY]?.[attr.slice(TENANCY.length + 1)];
  return resource[attr];
}

function toScimUser(u, tenant) {
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:User', TENANCY],
    id: u.id,
    userName: u.userName,
    displayName: u.displayName || u.userName,
    userType: u.userType || 'user',
    active: u.active !== false,
    [TENANCY]: { tenantId: tenant },
    meta: { resourceType: 'User' },
  };
}

function toScimGroup(g, tenant) {
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group', TENANCY],
    id: g.id,
    displayName: g.displayName || g.id,
    members: (g.members || []).map((m) => ({ value: m, type: 'User' })),
    [TENANCY]: { tenantId: tenant },
    meta: { resourceType: 'Group' },
  };
}

async function scim(req, res, url) {
  state.scimRequests++;
  const auth = req.headers.authorization || '';
  if (!auth.startsWith('Bearer ')) return scimError(res, 401, 'bearer token required');
  try {
    await jose.jwtVerify(auth.slice(7), directoryJwks(), { issuer, audience: 'scaikey-directory' });
  } catch (e) {
    return scimError(res, 401, `invalid token: ${e.code || e.message}`);
  }
  const kind = url.pathname.endsWith('/Users') ? 'Users' : url.pathname.endsWith('/Groups') ? 'Groups' : null;
  if (!kind || req.method !== 'GET') return scimError(res, 404, 'no such resource');
  let filters;
  try {
    filters = parseFilter(url.searchParams.get('filter'));
  } catch (e) {
    return scimError(res, 400, e.message);
  }
  const all = [];
  for (const [tenant, dir] of Object.entries(state.directory)) {
    for (const item of (kind === 'Users' ? dir.users : dir.groups) || []) {
      all.push(kind === 'Users' ? toScimUser(item, tenant) : toScimGroup(item, tenant));
    }
  }
  const matched = all.filter((r) => filters.every((f) => String(attrOf(r, f.attr)) === f.value));
  const startIndex = Math.max(1, Number(url.searchParams.get('startIndex') || 1));
  const count = Math.min(SCIM_PAGE_MAX, Math.max(0, Number(url.searchParams.get('count') || SCIM_PAGE_MAX)));
  const page = matched.slice(startIndex - 1, startIndex - 1 + count);
  res.writeHead(200, { 'content-type': 'application/scim+json' });
  res.end(JSON.stringify({
    schemas: [LIST], totalResults: matched.length, startIndex, itemsPerPage: page.length, Resources: page,
  }));
}

// ---- control (tests only) ----
async function readJson(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
}

function sendJson(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function control(req, res, url) {
  const body = req.method === 'POST' ? await readJson(req) : {};
  switch (url.pathname) {
    case '/control/state':
      if (body.sign_kid !== undefined) {
        if (!keys.find((k) => k.kid === body.sign_kid)) return sendJson(res, 400, { error: 'unknown kid' });
        state.signKid = body.sign_kid;
      }
      if (body.published !== undefined) state.published = new Set(body.published);
      if (body.down !== undefined) state.down = !!body.down;
      if (body.audience !== undefined) state.audience = body.audience;
      if (body.ttl !== undefined) state.ttl = body.ttl;
      if (body.claims !== undefined) Object.assign(state.claims, body.claims);
      return sendJson(res, 200, {
        sign_kid: state.signKid, published: [...state.published], down: state.down, scim_requests: state.scimRequests,
      });
    case '/control/directory':
      state.directory[body.tenant] = { users: body.users || [], groups: body.groups || [] };
      return sendJson(res, 200, { ok: true });
    case '/control/keys':
      // public keys, and the RSA key as PEM (for the HS256-with-the-public-key attack)
      return sendJson(res, 200, {
        keys: keys.map(publicJwk),
        rsa_public_pem: crypto.createPublicKey({ key: keys[0], format: 'jwk' }).export({ type: 'spki', format: 'pem' }),
      });
    case '/control/sign': {
      // signs any payload with any of the provider's keys (attack tests craft
      // expired, not-yet-valid, wrong-issuer tokens with valid signatures)
      const key = keys.find((k) => k.kid === (body.kid || state.signKid));
      if (!key) return sendJson(res, 400, { error: 'unknown kid' });
      const header = { alg: key.alg, typ: 'at+jwt', kid: key.kid, ...(body.header || {}) };
      const token = await new jose.CompactSign(new TextEncoder().encode(JSON.stringify(body.payload)))
        .setProtectedHeader(header)
        .sign(await jose.importJWK(key, key.alg));
      return sendJson(res, 200, { token });
    }
    default:
      return sendJson(res, 404, { error: 'no such control endpoint' });
  }
}

// ---- routing: our parts first, the provider for the rest ----
const providerCallback = provider.callback();
server.on('request', async (req, res) => {
  const url = new URL(req.url, issuer);
  try {
    if (url.pathname.startsWith('/control/')) return await control(req, res, url);
    if (url.pathname.startsWith('/scim/v2/')) return await scim(req, res, url);
    if (state.down && (url.pathname === '/jwks' || url.pathname.startsWith('/.well-known/'))) {
      res.writeHead(503, { 'content-type': 'text/plain' });
      return res.end('down for the test');
    }
    if (url.pathname === '/jwks') {
      return sendJson(res, 200, { keys: keys.filter((k) => state.published.has(k.kid)).map(publicJwk) });
    }
    return providerCallback(req, res);
  } catch (e) {
    if (!res.headersSent) sendJson(res, 500, { error: String(e && e.message) });
    return undefined;
  }
});

process.stdout.write(`READY ${port}\n`);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
