//! The `#[wasm_bindgen]` surface: the classes and plain objects JavaScript sees.

pub(crate) mod batch;
pub mod calls;
pub mod channel;
pub(crate) mod error;
pub(crate) mod future;
pub(crate) mod hub;
pub(crate) mod mo;
pub(crate) mod options;
pub(crate) mod pull;
pub mod query;
pub(crate) mod reply;
pub mod session;
pub(crate) mod shapes;
pub mod subscription;
pub mod types;
pub(crate) mod view;
