// Bearer tokens shaped as the API server issues them for a ServiceAccount (a JWT: header, claims,
// signature). Only their claims are made up here: the reviewer of each test decides what is valid.
import { randomBytes } from "node:crypto";

const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** A JWT with these claims (exp in seconds; default 2100-01-01) and a random signature. */
export function serviceAccountToken(claims: { readonly sub: string; readonly aud: string | readonly string[]; readonly exp?: number }): string {
  return `${part({ alg: "RS256", kid: "test" })}.${part({ iss: "https://kubernetes.default.svc", exp: 4102444800, ...claims })}.${randomBytes(32).toString("base64url")}`;
}
