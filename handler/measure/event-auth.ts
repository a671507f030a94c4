// Who sent the event: with OPTUNE_EVENT_AUDIENCE set, every request must carry a Knative Eventing
// OIDC token (feature `authentication-oidc`) issued for that audience. The API server checks it
// (TokenReview: signature, expiry, audience, a service account that still exists); the verdict
// is cached for the token's lifetime, keyed by a hash, so a token is neither kept nor logged.
import { createHash } from "node:crypto";
import type { TokenReviewer, TokenVerdict } from "../edges/kubernetes.js";
import { clip } from "../jobs/pod.js";

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
    remember(key, checked, checked.ok ? Math.min(at + MAX_POSITIVE_MS, expiryOf(token) ?? at + 60_000) : at + NEGATIVE_MS);
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

/** The `exp` of a JWT's payload, in ms; read only to bound the cache, after the API server said the token is valid. */
export function expiryOf(token: string): number | undefined {
  const payload = token.split(".")[1];
  if (payload === undefined) return undefined;
  try {
    const exp = (JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as { exp?: unknown }).exp;
    return typeof exp === "number" && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
