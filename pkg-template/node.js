// Entry for Node.js 20+ (20 needs --experimental-websocket for the global WebSocket; 22+ has it):
// the wasm is instantiated synchronously from the file next to this module, so no init() is
// needed (calling it is harmless).
import { readFileSync } from "node:fs";
import { initSync } from "./dme_events.js";
import * as glue from "./dme_events.js";
import { addExtras } from "./extras.js";

initSync({ module: readFileSync(new URL("./dme_events_bg.wasm", import.meta.url)) });
addExtras(glue);

export * from "./dme_events.js";
export default async function init() {}
