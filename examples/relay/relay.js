// The fault relay, the same in every runtime (a Cloudflare Durable Object, Deno, Node): log in to
// an APIC or NX-OS device, subscribe to `faultInst` in store mode, and POST every fault that
// becomes raised to a webhook. Gaps (socket drops, re-logins, expired subscriptions) are posted
// too, since events in between are lost for good; the package then reconciles, so a fault raised
// during an outage still arrives, late, as `created` or `modified`.
//
//   const relay = await startRelay(dme, { url, user, password, webhook });
//   relay.status();        // { state, subid, forwarded, gaps, ... }
//   await relay.stop();    // closes the channel and logs out
//
// `dme` is the package's module namespace (`import * as dme from "dme-events"`), already
// initialised. Nothing here is specific to one runtime: global `fetch`, `setTimeout`, `Date`.

/** A fault counts as raised when its lifecycle says so (`soaking` faults are not raised yet). */
export function isRaised(mo) {
  return mo.status !== "deleted" && mo.attributes.lc === "raised";
}

/** What the webhook receives for a raised fault. */
export function faultPayload(device, mo) {
  const a = mo.attributes;
  return {
    kind: "fault-raised",
    device,
    dn: mo.dn,
    code: a.code,
    severity: a.severity,
    cause: a.cause,
    descr: a.descr,
    lastTransition: a.lastTransition,
    status: mo.status,
    attributes: a,
  };
}

/**
 * Starts a relay; resolves once it is logged in and subscribed (rejects with the package's
 * error, e.g. `AUTH_REJECTED` or `NETWORK`, otherwise).
 * @param {object} dme the package
 * @param {object} cfg { url, user, password, webhook, flavor?, tokenTransport?, filter?,
 *   webhookHeaders?, webhookTimeoutMs?, connect? (more Session.login options) }
 * @param {(line: object) => void} [log] receives one object per notable happening
 */
export async function startRelay(dme, cfg, log = (o) => console.log(JSON.stringify(o))) {
  const { url, user, password, webhook } = cfg;
  if (!url || !user || !password || !webhook) {
    throw new Error("the relay needs url, user, password and webhook");
  }
  const st = {
    device: url,
    state: "connecting",
    subid: null,
    initial: 0,
    raised: 0,
    forwarded: 0,
    gaps: [],
    errors: 0,
    lastError: null,
    webhookFailures: 0,
    pending: 0,
    startedAt: new Date().toISOString(),
  };

  // Deliveries go out one at a time, in order, each retried a few times; the queue is bounded
  // so a dead webhook cannot exhaust memory (the oldest entries are dropped and counted).
  const outbox = [];
  let sending = false;
  let stopped = false;
  const timeoutMs = cfg.webhookTimeoutMs ?? 10_000;
  const post = async (payload) => {
    for (let attempt = 0; attempt < 4 && !stopped; attempt++) {
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), timeoutMs);
      try {
        const res = await fetch(webhook, {
          method: "POST",
          headers: { "Content-Type": "application/json", ...(cfg.webhookHeaders ?? {}) },
          body: JSON.stringify(payload),
          signal: abort.signal,
        });
        await res.arrayBuffer().catch(() => {});
        if (res.ok) return true;
        if (res.status < 500 && res.status !== 429) break; // the receiver refuses it: no retry
      } catch {
        // network failure or timeout: retry
      } finally {
        clearTimeout(timer);
      }
      await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
    }
    return false;
  };
  const drain = async () => {
    if (sending) return;
    sending = true;
    while (outbox.length && !stopped) {
      const payload = outbox[0];
      const ok = await post(payload);
      outbox.shift();
      st.pending = outbox.length;
      if (ok) {
        if (payload.kind === "fault-raised") st.forwarded++;
      } else {
        st.webhookFailures++;
        log({ event: "webhook-failed", kind: payload.kind, dn: payload.dn });
      }
    }
    sending = false;
  };
  const forward = (payload) => {
    if (outbox.length >= 1000) {
      outbox.splice(1, 1); // keep the one in flight
      st.webhookFailures++;
    }
    outbox.push(payload);
    st.pending = outbox.length;
    drain();
  };

  const session = await dme.Session.login({
    url,
    user,
    password,
    flavor: cfg.flavor ?? "apic",
    ...(cfg.tokenTransport ? { tokenTransport: cfg.tokenTransport } : {}),
    ...(cfg.connect ?? {}),
  });
  const ec = new dme.EventChannel(session, {
    onState: (s) => {
      st.state = s.state;
      log({ event: "state", state: s.state, ...(s.error ? { code: s.error.code } : {}) });
    },
    onError: (e) => {
      st.errors++;
      st.lastError = `${e.code}: ${e.message}`;
      log({ event: "error", code: e.code, message: e.message });
    },
  });

  // Faults whose raise was forwarded (or that were raised when the relay started): a fault is
  // forwarded when it becomes raised, not on every later change of it.
  const raised = new Set();
  let seeded = false;
  const early = [];
  const consider = (mos) => {
    for (const mo of mos) {
      if (isRaised(mo)) {
        if (!raised.has(mo.dn)) {
          raised.add(mo.dn);
          log({ event: "fault-raised", dn: mo.dn, code: mo.attributes.code, severity: mo.attributes.severity });
          forward(faultPayload(url, mo));
        }
      } else {
        raised.delete(mo.dn);
      }
    }
    st.raised = raised.size;
  };
  let sub;
  try {
    sub = await ec.subscribe(
      new dme.ClassQuery("faultInst", cfg.filter ? { filter: cfg.filter } : {}),
      {
        store: true,
        onEvent: (mos) => (seeded ? consider(mos) : early.push(...mos)),
        onGap: (gap) => {
          const g = { at: new Date().toISOString(), reason: gap.reason };
          st.gaps.push(g);
          if (st.gaps.length > 20) st.gaps.shift();
          log({ event: "gap", reason: gap.reason });
          forward({ kind: "gap", device: url, reason: gap.reason, at: g.at });
        },
      },
    );
  } catch (e) {
    await session.logout().catch(() => {});
    ec.close();
    throw e;
  }
  for (const mo of sub.initial) if (isRaised(mo)) raised.add(mo.dn);
  seeded = true;
  consider(early.splice(0));
  st.subid = sub.subid;
  st.initial = sub.initial.length;
  log({ event: "subscribed", subid: sub.subid, initial: sub.initial.length, raised: raised.size });

  return {
    status: () => ({ ...st, subid: sub.subid, gaps: [...st.gaps] }),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      sub.close();
      // Log out first: the channel shares the session's connection, and closing it first
      // would end that connection without an aaaLogout.
      await session.logout().catch(() => {});
      ec.close();
      st.state = "closed";
      log({ event: "stopped" });
    },
  };
}
