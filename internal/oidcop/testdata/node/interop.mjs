// Drives the OpenID certified Node library openid-client (v6, vendored in
// node_modules beside this file) against a running Gatehouse as a relying party:
// discovery, authorization code + PKCE, code exchange with ID token validation
// (signature by the JWKS, iss, aud, exp, nonce: all checked by the library),
// userinfo, refresh token grant, introspection and revocation.
//
// Inputs (env): ISSUER, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI.
// Protocol (one JSON object a line on stdout):
//   1. {"authorization_url", "state", "nonce"}; then it reads one line on stdin:
//      the URL the browser was redirected to (the callback with code, state, iss).
//   2. the results, or {"error", "message", ...} with exit status 1.
import http from 'node:http';
import readline from 'node:readline';

import * as client from 'openid-client';

// localFetch is the library's customFetch: the issuer is http://<slug>.localhost:<port>,
// which the machine's resolver does not know (and fetch() ignores a Host header), so a
// *.localhost URL is dialled at 127.0.0.1 with the URL's host as Host header, as a
// browser on the machine does. Anything else goes to the global fetch.
function localFetch(url, options) {
  const u = new URL(url);
  if (!u.hostname.endsWith('.localhost')) {
    return fetch(url, options);
  }
  const headers = Object.fromEntries(new Headers(options.headers).entries());
  headers.host = u.host;
  let body = options.body;
  if (body instanceof URLSearchParams) {
    body = body.toString();
  }
  if (body != null) {
    body = typeof body === 'string' ? Buffer.from(body) : Buffer.from(body);
    headers['content-length'] = String(body.length);
  }
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: u.port || 80, path: u.pathname + u.search, method: options.method, headers, signal: options.signal },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            for (const x of Array.isArray(v) ? v : [v]) h.append(k, x);
          }
          const empty = res.statusCode === 204 || res.statusCode === 304;
          resolve(new Response(empty ? null : Buffer.concat(chunks), { status: res.statusCode, statusText: res.statusMessage, headers: h }));
        });
      },
    );
    req.on('error', reject);
    req.end(body ?? undefined);
  });
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function main() {
  const { ISSUER, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI } = process.env;
  const config = await client.discovery(new URL(ISSUER), CLIENT_ID, CLIENT_SECRET, client.ClientSecretBasic(CLIENT_SECRET), {
    execute: [client.allowInsecureRequests],
    [client.customFetch]: localFetch,
  });

  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authURL = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid profile email',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  emit({ authorization_url: authURL.href, state, nonce });

  const rl = readline.createInterface({ input: process.stdin });
  const callback = await new Promise((resolve, reject) => {
    rl.once('line', resolve);
    rl.once('close', () => reject(new Error('stdin closed before the callback URL')));
  });
  rl.close();

  const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  const introspection = await client.tokenIntrospection(config, refreshed.access_token);
  await client.tokenRevocation(config, refreshed.refresh_token, { token_type_hint: 'refresh_token' });
  let refreshAfterRevoke = 'ok';
  try {
    await client.refreshTokenGrant(config, refreshed.refresh_token);
  } catch (err) {
    refreshAfterRevoke = err.error ?? err.code ?? err.message;
  }

  emit({
    issuer: config.serverMetadata().issuer,
    token_endpoint: config.serverMetadata().token_endpoint,
    id_token_claims: claims,
    token_type: tokens.token_type,
    refresh_token: tokens.refresh_token,
    userinfo,
    refreshed: {
      access_token: refreshed.access_token,
      refresh_token: refreshed.refresh_token,
      id_token_sub: refreshed.claims()?.sub ?? null,
    },
    introspection,
    refresh_after_revoke: refreshAfterRevoke,
  });
}

main().catch((err) => {
  emit({ error: err.name, message: err.message, code: err.code ?? null, oauth_error: err.error ?? null, cause: String(err.cause ?? '') });
  process.exit(1);
});
