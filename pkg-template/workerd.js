// Entry for Cloudflare Workers and workerd (the `workerd` export condition, which wrangler and
// esbuild's `conditions: ["workerd", "worker", "browser"]` pick). Compiling wasm from bytes is
// refused there, so the wasm is imported as a module (a `CompiledWasm` module: wrangler does this
// for `.wasm` imports; miniflare needs `modulesRules: [{ type: "CompiledWasm", include:
// ["**/*.wasm"] }]`) and instantiated synchronously: no init() is needed (calling it is harmless).
//
// workerd's `fetch` keeps no cookies, so the session token travels in a `Cookie` header that the
// package adds to every request (the default outside a page); workerd passes that header through.
// Its global `WebSocket` opens client sockets (`new WebSocket("wss://...")`), which is what the
// package uses. Keep a session in a Durable Object: a socket and the package's timers live as long
// as the object does (see examples/relay/ in the repository).
import wasmModule from "./dme_events_bg.wasm";
import { initSync } from "./dme_events.js";
import * as glue from "./dme_events.js";
import { addExtras } from "./extras.js";

initSync({ module: wasmModule });
addExtras(glue);

export * from "./dme_events.js";
export default async function init() {}
