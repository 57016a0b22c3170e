/**
 * The naming rules every implementation enforces before touching a message:
 * subjects, wildcard filters, KV keys, bucket names and headers. They are
 * NATS's rules (subjects: dot-separated non-empty tokens without whitespace,
 * `*` a whole token, `>` a whole last token; KV keys and buckets as in
 * JetStream KV, ADR-8), applied in memory too so that `gust dev` rejects what
 * a fleet would.
 */
import { InvalidBusArgumentError } from "./errors.js";
import type { Headers } from "./types.js";

const WHITESPACE = /\s/;
const KV_KEY = /^[-/=.\w]+$/;
const BUCKET_NAME = /^[-\w]+$/;

function tokensOf(subject: string, what: string): string[] {
  if (subject.length === 0 || WHITESPACE.test(subject)) {
    throw new InvalidBusArgumentError(
      `${what} ${JSON.stringify(subject)} is empty or contains whitespace`,
    );
  }
  const tokens = subject.split(".");
  if (tokens.some((t) => t.length === 0)) {
    throw new InvalidBusArgumentError(`${what} ${JSON.stringify(subject)} has an empty token`);
  }
  return tokens;
}

/** A subject a message is published to: no wildcards. */
export function assertPublishSubject(subject: string): void {
  const tokens = tokensOf(subject, "subject");
  if (tokens.some((t) => t === "*" || t === ">")) {
    throw new InvalidBusArgumentError(
      `cannot publish to the wildcard subject ${JSON.stringify(subject)}`,
    );
  }
}

/** A subscription or filter pattern: `*` and a final `>` allowed as whole tokens. Returns its tokens. */
export function parsePattern(pattern: string): string[] {
  const tokens = tokensOf(pattern, "subject filter");
  tokens.forEach((t, i) => {
    if (t === ">" && i !== tokens.length - 1) {
      throw new InvalidBusArgumentError(`">" must be the last token of ${JSON.stringify(pattern)}`);
    }
    if (t !== "*" && t !== ">" && (t.includes("*") || t.includes(">"))) {
      throw new InvalidBusArgumentError(
        `wildcards must be whole tokens in ${JSON.stringify(pattern)}`,
      );
    }
  });
  return tokens;
}

/** Whether a literal subject (as tokens) matches a parsed pattern. */
export function matchTokens(pattern: readonly string[], subject: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    if (p === ">") return subject.length > i;
    if (i >= subject.length) return false;
    if (p !== "*" && p !== subject[i]) return false;
  }
  return pattern.length === subject.length;
}

export function matchSubject(pattern: string, subject: string): boolean {
  return matchTokens(parsePattern(pattern), subject.split("."));
}

export function assertKvKey(key: string): void {
  if (key.startsWith(".") || key.endsWith(".") || key.includes("..") || !KV_KEY.test(key)) {
    throw new InvalidBusArgumentError(
      `invalid key ${JSON.stringify(key)}: use dot-separated tokens of [-/_=A-Za-z0-9]`,
    );
  }
}

export function assertKvFilter(filter: string): void {
  parsePattern(filter);
  for (const token of filter.split(".")) {
    if (token !== "*" && token !== ">" && !KV_KEY.test(token)) {
      throw new InvalidBusArgumentError(`invalid key filter ${JSON.stringify(filter)}`);
    }
  }
}

/** Bucket, object store and stream names share JetStream's stream-name rule. */
export function assertBucketName(name: string): void {
  if (!BUCKET_NAME.test(name)) {
    throw new InvalidBusArgumentError(
      `invalid bucket name ${JSON.stringify(name)}: use [-_A-Za-z0-9]`,
    );
  }
}

/** Any non-empty name works on both backends; the object store base64-encodes it into a subject. */
export function assertBlobName(name: string): void {
  if (typeof name !== "string" || name.length === 0 || name.length > 1024) {
    throw new InvalidBusArgumentError(`invalid blob name ${JSON.stringify(name)}`);
  }
}

/**
 * Header names are printable ASCII without ':' and values carry no CR/LF
 * (RFC 822 §3.1.2, which NATS headers follow). Values are trimmed, as NATS
 * trims them on the wire.
 */
export function normalizeHeaders(headers: Headers | undefined): Headers {
  if (headers === undefined) return EMPTY_HEADERS;
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    for (let i = 0; i < name.length; i++) {
      const c = name.charCodeAt(i);
      if (c === 58 || c < 33 || c > 126) {
        throw new InvalidBusArgumentError(`invalid header name ${JSON.stringify(name)}`);
      }
    }
    if (name.length === 0) throw new InvalidBusArgumentError("empty header name");
    if (typeof value !== "string" || /[\r\n]/.test(value)) {
      throw new InvalidBusArgumentError(`header ${name} must be a string without CR or LF`);
    }
    out[name] = value.trim();
  }
  return Object.freeze(out);
}

export const EMPTY_HEADERS: Headers = Object.freeze({});
