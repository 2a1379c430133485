// Entry for browsers, bundlers, web workers and Deno: the wasm-bindgen glue plus the protocol
// methods wasm-bindgen cannot declare (async iteration, explicit resource management).
// Call `await init()` once before using the classes.
import init, * as glue from "./dme_events.js";
import { addExtras } from "./extras.js";

addExtras(glue);

export * from "./dme_events.js";
export default init;
