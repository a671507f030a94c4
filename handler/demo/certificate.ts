// A self-signed certificate for the demo's webhook, made with node:crypto alone: the image ships
// no dev dependency, and the demo must run there too. ECDSA P-256, valid for a day, for
// localhost and 127.0.0.1. The DER (X.509, RFC 5280) is written by hand: a few fixed shapes.
import { generateKeyPairSync, randomBytes, sign } from "node:crypto";

export interface CertificatePair {
  /** PEM. */
  readonly cert: string;
  /** PEM (PKCS#8). */
  readonly private: string;
}

/**
 * A DER INTEGER must be positive (high bit of the first byte clear) and minimal (no leading zero
 * byte before a byte whose high bit is clear): a first byte of 0x40-0x7f is both. A random first
 * byte masked to 0x00 made one certificate in 256 unreadable ("illegal padding").
 */
export function serialNumber(random: Buffer): Buffer {
  const serial = Buffer.from(random);
  serial[0] = (serial[0]! & 0x3f) | 0x40;
  return serial;
}

export function selfSignedCertificate(now = new Date()): CertificatePair {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const ecdsaWithSha256 = sequence(oid([1, 2, 840, 10045, 4, 3, 2]));
  const name = sequence(set(sequence(oid([2, 5, 4, 3]), tagged(0x0c, Buffer.from("localhost")))));
  const validity = sequence(utcTime(new Date(now.getTime() - 60_000)), utcTime(new Date(now.getTime() + 86_400_000)));
  // subjectAltName: DNS localhost, IP 127.0.0.1; basicConstraints CA: it is its own trust anchor.
  const altNames = sequence(tagged(0x82, Buffer.from("localhost")), tagged(0x87, Buffer.from([127, 0, 0, 1])));
  const extensions = sequence(
    sequence(oid([2, 5, 29, 17]), tagged(0x04, altNames)),
    sequence(oid([2, 5, 29, 19]), tagged(0x01, Buffer.from([0xff])), tagged(0x04, sequence(tagged(0x01, Buffer.from([0xff]))))),
  );
  const serial = serialNumber(randomBytes(16));
  const tbs = sequence(
    tagged(0xa0, tagged(0x02, Buffer.from([2]))),
    tagged(0x02, serial),
    ecdsaWithSha256,
    name,
    validity,
    name,
    publicKey.export({ type: "spki", format: "der" }),
    tagged(0xa3, extensions),
  );
  const signature = sign("sha256", tbs, { key: privateKey, dsaEncoding: "der" });
  const certificate = sequence(tbs, ecdsaWithSha256, tagged(0x03, Buffer.concat([Buffer.from([0]), signature])));
  return { cert: pem("CERTIFICATE", certificate), private: privateKey.export({ type: "pkcs8", format: "pem" }).toString() };
}

function pem(label: string, der: Buffer): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** A DER element: tag, definite length, content. */
function tagged(tag: number, content: Buffer): Buffer {
  const length = content.length;
  const head =
    length < 0x80 ? Buffer.from([tag, length])
    : length < 0x100 ? Buffer.from([tag, 0x81, length])
    : Buffer.from([tag, 0x82, length >> 8, length & 0xff]);
  return Buffer.concat([head, content]);
}

const sequence = (...items: Buffer[]) => tagged(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => tagged(0x31, Buffer.concat(items));

function oid(arcs: readonly number[]): Buffer {
  const bytes = [40 * arcs[0]! + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const base128 = [arc & 0x7f];
    for (let rest = arc >> 7; rest > 0; rest >>= 7) base128.unshift((rest & 0x7f) | 0x80);
    bytes.push(...base128);
  }
  return tagged(0x06, Buffer.from(bytes));
}

/** UTCTime YYMMDDHHMMSSZ (years 1950 to 2049). */
function utcTime(date: Date): Buffer {
  return tagged(0x17, Buffer.from(`${date.toISOString().slice(2, 19).replace(/[-:T]/g, "")}Z`));
}
