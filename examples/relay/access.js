// Who may call the relay Worker: only a caller presenting `Authorization: Bearer <RELAY_TOKEN>`.
// Without a configured RELAY_TOKEN nobody may (the Worker fails closed: an unprotected relay
// would let anyone stop it, or make it log in again and again until the device locks the
// account). Calls from the platform itself (cron trigger, alarm) never come through here.
//
// Plain Web Crypto, so it runs in workerd, Deno and Node alike.

/** Shorter secrets are refused as if unset: a guessable bearer protects nothing. */
export const MIN_TOKEN_LENGTH = 16;

const encoder = new TextEncoder();
const sha256 = async (s) => new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(s)));

/**
 * Whether two strings are equal, in time independent of where they differ and of their lengths:
 * both are hashed first, so the comparison runs over two equal-length digests.
 */
export async function sameSecret(a, b) {
  const [x, y] = await Promise.all([sha256(a), sha256(b)]);
  // workerd has a constant-time compare of its own; elsewhere, a loop without early exit.
  if (typeof crypto.subtle.timingSafeEqual === "function") return crypto.subtle.timingSafeEqual(x, y);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
  return diff === 0;
}

/** The credential of an `Authorization: Bearer <token>` header (scheme case-insensitive), or null. */
export function bearerOf(request) {
  const m = /^Bearer +([^\s]+) *$/i.exec(request.headers.get("Authorization") ?? "");
  return m ? m[1] : null;
}

/**
 * Decides on an external call: null when it may go on, else the refusal to answer with (503
 * when RELAY_TOKEN is missing or too short, 401 for a missing or wrong bearer). Neither the
 * configured nor the presented token ever appears in a refusal.
 */
export async function refusal(request, env) {
  // Trimmed: a secret piped in with its newline could otherwise never be presented.
  const token = typeof env.RELAY_TOKEN === "string" ? env.RELAY_TOKEN.trim() : "";
  if (token.length < MIN_TOKEN_LENGTH) {
    return new Response(
      `the relay refuses every call until the secret RELAY_TOKEN is set (at least ${MIN_TOKEN_LENGTH} characters):\n` +
        "  openssl rand -base64 32 | npx wrangler secret put RELAY_TOKEN\n" +
        "then call it with  Authorization: Bearer <RELAY_TOKEN>\n",
      { status: 503, headers: { "Content-Type": "text/plain; charset=utf-8" } },
    );
  }
  const presented = bearerOf(request);
  if (presented === null || !(await sameSecret(presented, token))) {
    return new Response("unauthorized: send Authorization: Bearer <RELAY_TOKEN>\n", {
      status: 401,
      headers: { "Content-Type": "text/plain; charset=utf-8", "WWW-Authenticate": 'Bearer realm="relay"' },
    });
  }
  return null;
}
