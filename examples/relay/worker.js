// The fault relay as a Cloudflare Worker. The relay itself lives in a Durable Object (`Relay`):
// the one place on that platform where a long-lived outgoing WebSocket and timers belong. The
// Worker only routes a few HTTP calls to the single relay object:
//
//   POST /start    start watching (idempotent); the object also starts itself on its alarm
//   GET  /status   what the relay is doing: state, subscription id, forwarded count, gaps, ...
//   POST /stop     stop and log out (and stay stopped until the next /start)
//
// Every one of these calls needs `Authorization: Bearer <RELAY_TOKEN>`; without the secret
// RELAY_TOKEN (or with one shorter than 16 characters) the Worker answers them all with 503
// (access.js). The cron trigger and the alarm need no bearer: they do not come in over HTTP.
//
// Configuration comes from the environment (wrangler.toml `[vars]`, secrets for the password and
// the token): DEVICE_URL, DEVICE_USER, DEVICE_PASSWORD, DEVICE_FLAVOR ("apic" | "nxos"),
// WEBHOOK_URL, RELAY_TOKEN (required), WATCHDOG_MS (optional: the alarm's period, default one
// minute).
//
// Keeping it alive: the package's timers (subscription and session refreshes) run on setTimeout
// inside the object while it is in memory, and its socket pushes keep it busy. An alarm every
// WATCHDOG_MS is the safety net: if the platform evicted or restarted the object, the alarm
// brings it back, starts a new relay (a new session, a new snapshot) and re-arms itself.
import * as dme from "dme-events";
import { refusal } from "./access.js";
import { startRelay } from "./relay.js";

const WATCHDOG_MS = 60_000;
const watchdogMs = (env) => Number(env.WATCHDOG_MS) || WATCHDOG_MS;

function configFrom(env) {
  return {
    url: env.DEVICE_URL,
    user: env.DEVICE_USER,
    password: env.DEVICE_PASSWORD,
    flavor: env.DEVICE_FLAVOR || "apic",
    webhook: env.WEBHOOK_URL,
  };
}

export class Relay {
  constructor(state, env) {
    this.state = state;
    this.env = env;
    this.relay = null;
    this.starting = null;
    this.lastFailure = null;
  }

  async ensureStarted() {
    if (this.relay) return this.relay;
    if (!this.starting) {
      this.starting = startRelay(dme, configFrom(this.env), (o) => console.log(JSON.stringify(o)))
        .then(async (r) => {
          // A /stop that arrived while this one was logging in wins.
          if (!(await this.state.storage.get("enabled"))) {
            await r.stop();
            throw Object.assign(new Error("stopped while starting"), { code: "CLOSED" });
          }
          this.relay = r;
          this.lastFailure = null;
          return r;
        })
        .catch((e) => {
          this.lastFailure = { code: e.code ?? "ERROR", message: String(e.message ?? e) };
          throw e;
        })
        .finally(() => {
          this.starting = null;
        });
    }
    return this.starting;
  }

  async fetch(request) {
    const { pathname } = new URL(request.url);
    if (pathname === "/start" && request.method === "POST") {
      await this.state.storage.put("enabled", true);
      await this.state.storage.setAlarm(Date.now() + watchdogMs(this.env));
      try {
        await this.ensureStarted();
      } catch {
        return Response.json({ ok: false, failure: this.lastFailure }, { status: 502 });
      }
      return Response.json({ ok: true, status: this.relay.status() });
    }
    if (pathname === "/stop" && request.method === "POST") {
      await this.state.storage.put("enabled", false);
      await this.state.storage.deleteAlarm();
      const r = this.relay;
      this.relay = null;
      if (r) await r.stop();
      return Response.json({ ok: true });
    }
    if (pathname === "/status") {
      return Response.json({
        running: !!this.relay,
        enabled: !!(await this.state.storage.get("enabled")),
        failure: this.lastFailure,
        status: this.relay ? this.relay.status() : null,
      });
    }
    return new Response("not found\n", { status: 404 });
  }

  async alarm() {
    if (!(await this.state.storage.get("enabled"))) return;
    await this.state.storage.setAlarm(Date.now() + watchdogMs(this.env));
    // A relay whose connection failed for good is replaced by a fresh one.
    if (this.relay && this.relay.status().state === "failed") {
      const r = this.relay;
      this.relay = null;
      await r.stop();
    }
    await this.ensureStarted().catch((e) => console.log(JSON.stringify({ event: "start-failed", code: e.code })));
  }
}

export default {
  async fetch(request, env) {
    const refused = await refusal(request, env);
    if (refused) return refused;
    const { pathname } = new URL(request.url);
    if (!["/start", "/stop", "/status"].includes(pathname)) {
      return new Response("POST /start, GET /status, POST /stop\n", { status: 404 });
    }
    const id = env.RELAY.idFromName("relay");
    return env.RELAY.get(id).fetch(request);
  },

  // A cron trigger (wrangler.toml `[triggers] crons`) makes sure the relay runs after a deploy.
  // It talks to the object directly, so it needs no bearer.
  async scheduled(_controller, env) {
    const id = env.RELAY.idFromName("relay");
    await env.RELAY.get(id).fetch("https://relay/start", { method: "POST" });
  },
};
