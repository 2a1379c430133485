export * from "./dme_events.js";
import type { Page, PulledEvent } from "./dme_events.js";

/** Instantiates the WebAssembly module. Call once before using the classes (browsers, bundlers,
 * Deno). Optional under Node.js, where the module is loaded synchronously. */
export default function init(
  input?: { module_or_path: RequestInfo | URL | Response | BufferSource | WebAssembly.Module },
): Promise<void>;

declare module "./dme_events.js" {
  interface Subscription {
    /** `for await (const ev of sub)`: the subscription's events, for subscriptions made without
     * `onEvent`. */
    [Symbol.asyncIterator](): AsyncIterator<PulledEvent, undefined>;
  }
  interface Pages {
    /** `for await (const page of session.pages(query, { pageSize }))`. */
    [Symbol.asyncIterator](): AsyncIterator<Page, undefined>;
  }
  interface Session {
    /** `await using session = ...` logs out at the end of the scope. */
    [Symbol.asyncDispose](): Promise<void>;
  }
}
