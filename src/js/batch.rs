//! One conversion per frame: the objects a frame hands to several subscriptions become one
//! JavaScript array, given to each of them.
//!
//! The engine hands each subscription a frame names its own `Deliver`, one after the other in
//! the same pump, with the same objects unless store mode or de-duplication changed them. So
//! the last converted batch is kept until the pump ends; a `Deliver` with equal objects for
//! another subscription reuses its array. Comparing is far cheaper than writing JSON and parsing
//! it again. A subscription never gets the same array twice, and nothing outlives the pump, so
//! an array shared is only ever shared by the subscriptions of one batch of equal objects.

use js_sys::Array;

use super::mo::mos_to_js;
use crate::engine::SubHandle;
use crate::protocol::Mo;

#[derive(Default)]
pub(crate) struct Batch {
    last: Option<Converted>,
}

struct Converted {
    mos: Vec<Mo>,
    js: Array,
    /// The subscriptions that got `js`.
    given: Vec<SubHandle>,
}

impl Batch {
    /// `mos` as a JS array for `handle`: the last one converted when it holds the same objects
    /// and `handle` has not had it yet, else a new one.
    pub(crate) fn convert(&mut self, handle: SubHandle, mos: Vec<Mo>) -> Array {
        if let Some(c) = self.last.as_mut() {
            if !c.given.contains(&handle) && c.mos == mos {
                c.given.push(handle);
                return c.js.clone();
            }
        }
        let js = mos_to_js(&mos);
        self.last = Some(Converted {
            mos,
            js: js.clone(),
            given: vec![handle],
        });
        js
    }

    /// The pump ended: what was converted is not shared any further.
    pub(crate) fn clear(&mut self) {
        self.last = None;
    }
}
