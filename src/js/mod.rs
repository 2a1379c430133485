//! The `#[wasm_bindgen]` surface: the classes and plain objects JavaScript sees.

pub(crate) mod error;
pub(crate) mod mo;
pub(crate) mod options;
pub mod query;
pub mod session;
pub mod types;
