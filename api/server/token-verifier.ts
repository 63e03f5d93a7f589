import { createHash, timingSafeEqual } from 'node:crypto';

/** What a bearer token may do: `client` runs transactions and sagas, `admin` also resolves in-doubt branches. */
export type TokenRole = 'client' | 'admin';

/** Checks a presented bearer token against the configured ones. */
export interface TokenVerifier {
  /** The token's role, or undefined when it is not a configured token. */
  roleOf(token: string): TokenRole | undefined;
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * A verifier over `api.tokens`. Tokens are compared as SHA-256 digests with `timingSafeEqual`,
 * always against every configured token: neither the time taken nor an early exit tells a
 * caller how much of a guess was right, how long a real token is, or which one matched.
 */
export function createTokenVerifier(tokens: Readonly<Record<string, TokenRole>>): TokenVerifier {
  const known = Object.entries(tokens).map(([token, role]) => ({ digest: digest(token), role }));
  return {
    roleOf(token) {
      const d = digest(token);
      let role: TokenRole | undefined;
      for (const k of known) {
        if (timingSafeEqual(k.digest, d) && role === undefined) role = k.role;
      }
      return role;
    },
  };
}

/** The token of an `Authorization: Bearer <token>` header value, or undefined for any other form. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /^Bearer +([\x21-\x7e]+) *$/i.exec(header);
  return m?.[1];
}

/**
 * A short, non-reversible id of the bearer token in `header` (8 hex digits of its SHA-256), for
 * audit log lines that must say which token acted without writing the token itself.
 */
export function tokenIdOf(header: string | undefined): string | undefined {
  const token = bearerToken(header);
  return token === undefined ? undefined : digest(token).toString('hex').slice(0, 8);
}
