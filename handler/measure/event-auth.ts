// Who sent the event: with OPTUNE_EVENT_AUDIENCE set, every request must carry a Knative Eventing
// OIDC token (feature `authentication-oidc`) issued for that audience. The API server checks it
// (TokenReview: signature, expiry, audience, a service account that still exists); the verdict
// is cached for the token's lifetime, keyed by a hash, so a token is neither kept nor logged.
// Reviews in flight are bounded (16): a token whose own claims already say it cannot be ours (not
// a JWT, another audience, expired, another ServiceAccount than the senders) is refused without
// one, so random tokens cannot take the slots a source's new token needs.
import { createHash } from "node:crypto";
import type { TokenReviewer, TokenVerdict } from "../edges/kubernetes.js";
import { clip, isRecord } from "../jobs/pod.js";

export type AuthResult =
  | { readonly ok: true; readonly user: string }
  /** 401: no valid token (the event changes nothing); 503: the API server could not say, send it again. */
  | { readonly ok: false; readonly status: 401 | 503; readonly reason: string; readonly retryAfterSeconds?: number };

export type EventAuthenticator = (authorization: string | undefined) => Promise<AuthResult>;

export interface EventAuthOptions {
  readonly audience: string;
  /** The only identities accepted (the sources' OIDC service accounts); undefined: any for the audience. */
  readonly senders?: ReadonlySet<string>;
  readonly reviewer: TokenReviewer;
  readonly now?: () => number;
  /** Reviews in flight at once; beyond it, requests are answered 503 without asking the API server. */
  readonly maxReviews?: number;
}

/** Verdicts kept at most (the oldest goes first). */
export const MAX_CACHED_VERDICTS = 10_000;
/** A valid token's verdict is kept until it expires, and never longer than this. */
export const MAX_POSITIVE_MS = 10 * 60_000;
/** A refused token is refused again without asking for this long. */
export const NEGATIVE_MS = 10_000;
const DEFAULT_MAX_REVIEWS = 16;
/** The characters of a JWT (base64url and dots); anything else is refused without a review. */
const TOKEN = /^[A-Za-z0-9_.~+/=-]{16,16384}$/;

interface Cached {
  readonly result: AuthResult;
  readonly until: number;
}

export function createEventAuthenticator(options: EventAuthOptions): EventAuthenticator {
  const now = options.now ?? Date.now;
  const maxReviews = options.maxReviews ?? DEFAULT_MAX_REVIEWS;
  const cache = new Map<string, Cached>();
  const reviewing = new Map<string, Promise<AuthResult>>();

  const remember = (key: string, result: AuthResult, until: number) => {
    cache.delete(key);
    cache.set(key, { result, until });
    if (cache.size > MAX_CACHED_VERDICTS) cache.delete(cache.keys().next().value as string);
  };

  async function review(key: string, token: string): Promise<AuthResult> {
    let verdict: TokenVerdict;
    try {
      verdict = await options.reviewer.review(token, options.audience);
    } catch (error) {
      return { ok: false, status: 503, reason: `cannot check the event's token: ${(error as Error).message}`, retryAfterSeconds: 5 };
    }
    const checked = outcomeOf(verdict, options.audience, options.senders);
    const at = now();
    remember(key, checked, checked.ok ? Math.min(at + MAX_POSITIVE_MS, expiryOf(unverifiedClaims(token)) ?? at + 60_000) : at + NEGATIVE_MS);
    return checked;
  }

  return async (authorization) => {
    const token = bearerToken(authorization);
    if (token === undefined) return { ok: false, status: 401, reason: authorization === undefined ? "no Authorization header: this function accepts only events with an OIDC token" : "the Authorization header is not a bearer token" };
    const key = createHash("sha256").update(token).digest("base64url");
    const cached = cache.get(key);
    if (cached !== undefined) {
      if (cached.until > now()) return cached.result;
      cache.delete(key);
    }
    const running = reviewing.get(key);
    if (running !== undefined) return running;
    const cannot = cannotBeOurs(token, options.audience, options.senders, now());
    if (cannot !== undefined) {
      const refusal: AuthResult = { ok: false, status: 401, reason: cannot };
      remember(key, refusal, now() + NEGATIVE_MS);
      return refusal;
    }
    if (reviewing.size >= maxReviews) return { ok: false, status: 503, reason: `${maxReviews} token reviews are in flight`, retryAfterSeconds: 1 };
    const pending = review(key, token).finally(() => reviewing.delete(key));
    reviewing.set(key, pending);
    return pending;
  };
}

/** The token of "Bearer <token>", when it has the characters a JWT has. */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const match = /^Bearer +(\S+)$/i.exec(authorization);
  return match !== null && TOKEN.test(match[1]!) ? match[1] : undefined;
}

function outcomeOf(verdict: TokenVerdict, audience: string, senders: ReadonlySet<string> | undefined): AuthResult {
  if (!verdict.authenticated) return { ok: false, status: 401, reason: verdict.reason };
  // The API server answers with the audiences the token is valid for among those asked: ours must be one.
  if (!verdict.audiences.includes(audience)) return { ok: false, status: 401, reason: "the token is not for this function's audience" };
  // Any pod may mount a token for any audience: only the sources' own identities may speak.
  if (senders !== undefined && !senders.has(verdict.user)) return { ok: false, status: 401, reason: `${clip(verdict.user, 253)} is not one of the senders this function accepts (OPTUNE_EVENT_SENDERS)` };
  return { ok: true, user: verdict.user };
}

/** The claims of a JWT (its middle part), unverified; undefined when the token is not a JWT with a JSON object there. */
export function unverifiedClaims(token: string): Readonly<Record<string, unknown>> | undefined {
  const parts = token.split(".");
  if (parts.length !== 3 || !parts.every((part) => /^[A-Za-z0-9_-]+$/.test(part))) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8"));
    return isRecord(claims) ? claims : undefined;
  } catch {
    return undefined;
  }
}

/** How far our clock may be behind the API server's before a token we think expired is still refused without a review. */
const CLOCK_SKEW_MS = 60_000;

/**
 * Why a token cannot be valid for us, read from its own unverified claims (a ServiceAccount token
 * always carries aud, exp and sub), or undefined when only the API server can say. Claims that
 * match prove nothing: such a token is reviewed.
 */
export function cannotBeOurs(token: string, audience: string, senders: ReadonlySet<string> | undefined, now: number): string | undefined {
  const claims = unverifiedClaims(token);
  if (claims === undefined) return "the token is not a ServiceAccount token (a JWT)";
  const audiences = typeof claims.aud === "string" ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : [];
  if (!audiences.includes(audience)) return "the token is not for this function's audience";
  const expiry = expiryOf(claims);
  if (expiry === undefined || expiry < now - CLOCK_SKEW_MS) return "the token has expired (or has no expiry)";
  if (senders !== undefined && (typeof claims.sub !== "string" || !senders.has(claims.sub))) {
    // The subject as the API server would name the user, when it is one printable word; it is the sender's claim, not a fact.
    const whom = typeof claims.sub === "string" && /^[\x21-\x7e]{1,253}$/.test(claims.sub) ? claims.sub : "the token's subject";
    return `${whom} is not one of the senders this function accepts (OPTUNE_EVENT_SENDERS)`;
  }
  return undefined;
}

/** The `exp` of a JWT's claims, in ms. */
export function expiryOf(claims: Readonly<Record<string, unknown>> | undefined): number | undefined {
  const exp = claims?.exp;
  return typeof exp === "number" && Number.isFinite(exp) ? exp * 1000 : undefined;
}
