//! The one way this package makes a JavaScript `Promise`: from a Rust future, its error a
//! [`Failure`] that becomes a JavaScript `Error` here and nowhere else.

use std::future::Future;
use std::pin::Pin;

use js_sys::Promise;
use wasm_bindgen::JsValue;

use super::error::Failure;

type Boxed = Pin<Box<dyn Future<Output = Result<JsValue, Failure>>>>;

/// A promise that `future` settles: resolved with its value, or rejected with its failure.
/// A value known now is `promise(std::future::ready(result))`: it settles in a microtask, as a
/// promise returned by an `async` JavaScript function would.
pub(crate) fn promise<T, F>(future: F) -> Promise
where
    T: Into<JsValue>,
    F: Future<Output = Result<T, Failure>> + 'static,
{
    // Boxed first so that the body below is compiled once, not once per caller's future type.
    run(Box::pin(async move { future.await.map(Into::into) }))
}

fn run(future: Boxed) -> Promise {
    wasm_bindgen_futures::future_to_promise(async move { future.await.map_err(JsValue::from) })
}
