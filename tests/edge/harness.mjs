// Helpers of the edge tests: a dme-sim of their own on loopback, a webhook receiver on
// loopback, bounded waits, and a tiny sequential runner that ends with "N passed, M failed".
import { spawn } from "node:child_process";
import { copyFileSync, cpSync, existsSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");

/** Resolves `p` or rejects after `ms` with `what`. */
export function within(ms, what, p) {
  let t;
  return Promise.race([
    p,
    new Promise((_, rej) => {
      t = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

/** Copies what a Worker loads of the package (`pkg`) into `dir`: the workerd entry, the glue, its
 * helpers, the wasm and the wasm-bindgen snippets the glue imports (workerd resolves every import
 * from the files it is given). */
export function copyWorkerPackage(pkg, dir) {
  for (const f of ["workerd.js", "dme_events.js", "extras.js", "dme_events_bg.wasm"]) {
    copyFileSync(join(pkg, f), join(dir, f));
  }
  if (existsSync(join(pkg, "snippets"))) cpSync(join(pkg, "snippets"), join(dir, "snippets"), { recursive: true });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `f` (sync or async) until it returns a truthy value; throws after `ms`. */
export async function until(ms, what, f, every = 100) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(every);
  }
}

/** Starts target/debug/dme-sim on an ephemeral loopback port; it stops by itself. */
export async function startSim(args = []) {
  const bin = process.env.DME_SIM_BIN ?? join(ROOT, "target/debug/dme-sim");
  const child = spawn(bin, ["--bind", "127.0.0.1:0", "--exit-after", "300", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const url = await within(
    10_000,
    "dme-sim to listen",
    new Promise((resolve, reject) => {
      child.stdout.on("data", (d) => {
        out += d;
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
        if (m) resolve(m[1]);
      });
      child.stderr.on("data", (d) => process.stderr.write(`[sim] ${d}`));
      child.on("exit", (c) => reject(new Error(`dme-sim exited (${c}) before listening`)));
    }),
  );
  const sim = {
    url,
    async post(path, body) {
      const res = await fetch(`${url}${path}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      if (!res.ok) throw new Error(`dme-sim ${path} answered ${res.status}`);
      return res.json();
    },
    async stats() {
      return (await fetch(`${url}/_sim/stats`)).json();
    },
    /** Writes a faultInst under a switch. */
    fault(code, attrs) {
      const dn = `topology/pod-1/node-101/sys/fault-${code}`;
      return sim
        .post(`/_sim/write?dn=${dn}`, { faultInst: { attributes: { code, ...attrs } } })
        .then(() => dn);
    },
    stop() {
      child.kill("SIGTERM");
    },
  };
  return sim;
}

/** A webhook receiver on 127.0.0.1:0 recording every POSTed JSON body. */
export async function startWebhook() {
  const received = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      try {
        received.push({ path: req.url, headers: req.headers, body: JSON.parse(body) });
      } catch {
        received.push({ path: req.url, headers: req.headers, body: null, raw: body });
      }
      res.writeHead(204).end();
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${server.address().port}/hook`,
    received,
    bodies: (kind) => received.map((r) => r.body).filter((b) => b && (!kind || b.kind === kind)),
    close: () => new Promise((r) => server.close(r)),
  };
}

/**
 * A recording reverse proxy on 127.0.0.1:0 in front of `target` (dme-sim): every REST request
 * is forwarded and recorded with its raw headers, login and refresh answers with the token they
 * issued; WebSocket upgrades are piped through as raw TCP and recorded too. It shows what a
 * runtime really put on the wire (a Cookie header, how many tokens) where the device cannot.
 */
export async function startProxy(target) {
  const t = new URL(target);
  const requests = [];
  const issued = [];
  const sockets = new Set();
  const record = (req) => {
    const raw = req.rawHeaders;
    const values = (name) => {
      const out = [];
      for (let i = 0; i < raw.length; i += 2) if (raw[i].toLowerCase() === name) out.push(raw[i + 1]);
      return out;
    };
    const r = { method: req.method, path: req.url, at: Date.now(), cookies: values("cookie"), devCookies: values("devcookie") };
    requests.push(r);
    return r;
  };
  const server = http.createServer((req, res) => {
    record(req);
    const up = http.request(
      { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers },
      (ur) => {
        const chunks = [];
        ur.on("data", (c) => chunks.push(c));
        ur.on("end", () => {
          const body = Buffer.concat(chunks);
          if (/^\/api\/(aaaLogin|aaaRefresh)\.json/.test(req.url) && ur.statusCode === 200) {
            try {
              const tok = JSON.parse(body).imdata[0].aaaLogin.attributes.token;
              if (tok) issued.push({ token: tok, at: Date.now(), by: req.url.slice(5, 15) });
            } catch {}
          }
          res.writeHead(ur.statusCode, ur.headers).end(body);
        });
      },
    );
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  server.on("upgrade", (req, socket, head) => {
    record(req);
    const upstream = net.connect(Number(t.port), t.hostname, () => {
      let raw = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2) raw += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      upstream.write(raw + "\r\n");
      if (head?.length) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    sockets.add(socket);
    sockets.add(upstream);
    const end = () => {
      socket.destroy();
      upstream.destroy();
      sockets.delete(socket);
      sockets.delete(upstream);
    };
    upstream.on("error", end).on("close", end);
    socket.on("error", end).on("close", end);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    issued,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(r));
    },
  };
}

/** A sequential runner: each step gets a deadline; later steps run even after a failure. */
export function runner(label) {
  const steps = [];
  return {
    test(name, ms, fn) {
      steps.push({ name, ms, fn });
    },
    async run(teardown) {
      let passed = 0;
      let failed = 0;
      const t0 = Date.now();
      for (const s of steps) {
        const t = Date.now();
        try {
          await within(s.ms, s.name, Promise.resolve().then(s.fn));
          passed++;
          console.log(`ok ${label}: ${s.name} (${Date.now() - t} ms)`);
        } catch (e) {
          failed++;
          console.log(`FAIL ${label}: ${s.name}: ${e?.stack ?? e}`);
        }
      }
      try {
        await within(15_000, "teardown", Promise.resolve().then(teardown));
      } catch (e) {
        console.log(`teardown of ${label}: ${e}`);
      }
      console.log(`${label}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      console.log(`${passed} passed, ${failed} failed`);
      return failed;
    },
  };
}

export function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}
