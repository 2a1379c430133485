//! The JSON reader: serde visitors straight into [`RawMo`]s, with no intermediate
//! `serde_json::Value` tree. Semantic problems (an entry that is not an object, attributes that are
//! not a map) are carried as values so one bad entry never fails the frame; only a syntax error or
//! a broken envelope does.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::doc::{Doc, RawMo};
use super::error::MalformedError;
use super::mo::Attributes;
use super::query::Format;

/// Entries nested deeper than this are refused, so hostile input cannot exhaust the stack
/// (serde_json's own limit is 128 levels; an MO tree needs far fewer).
const MAX_DEPTH: usize = 32;

pub(crate) fn read(what: &'static str, body: &str) -> Result<Doc, MalformedError> {
    let mut de = serde_json::Deserializer::from_str(body);
    let doc = DocSeed
        .deserialize(&mut de)
        .map_err(|e| MalformedError::new(what, syntax_detail(&e)))?;
    de.end()
        .map_err(|e| MalformedError::new(what, syntax_detail(&e)))?;
    doc.map_err(|reason| MalformedError::new(what, reason))
}

/// serde_json's messages name positions and expectations, never input values, so they are safe to
/// show (they cannot leak a token).
fn syntax_detail(e: &serde_json::Error) -> String {
    format!("invalid JSON ({e})")
}

/// The visitor methods for scalars that are not what a visitor expects: each yields a value
/// (an error carried as data, or `false`), so a wrong-typed member never fails the document.
macro_rules! reject_scalars {
    ($ty:ty, |$what:ident| $value:expr) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<$ty, E> {
            let $what = "a string";
            Ok($value)
        }
        fn visit_unit<E: de::Error>(self) -> Result<$ty, E> {
            let $what = "null";
            Ok($value)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<$ty, E> {
            let $what = "a boolean";
            Ok($value)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<$ty, E> {
            let $what = "a number";
            Ok($value)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<$ty, E> {
            let $what = "a number";
            Ok($value)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<$ty, E> {
            let $what = "a number";
            Ok($value)
        }
    };
}

/// A map key, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// An attribute value: strings as they are; numbers and booleans as their text (NX-OS telemetry
/// can carry them); null, objects and arrays are not attribute values and are skipped.
struct Scalar(Option<String>);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar(Some(v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Scalar, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Scalar, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// `subscriptionId`: an array of strings in pushes, a scalar string in subscribe answers. Kept as
/// decimal strings; an integer that survived JSON exactly (`u64`) is accepted, a float (precision
/// already lost) is not.
struct Ids(Result<Vec<String>, String>);

impl<'de> Deserialize<'de> for Ids {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        fn one(s: &str) -> Result<String, String> {
            if !s.is_empty() && s.len() <= 40 && s.bytes().all(|b| b.is_ascii_digit()) {
                Ok(s.to_owned())
            } else {
                Err("subscriptionId is not a decimal string".to_owned())
            }
        }
        impl<'de> Visitor<'de> for V {
            type Value = Ids;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("subscription ids")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Ids, E> {
                Ok(Ids(one(v).map(|s| vec![s])))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Ids, E> {
                Ok(Ids(Ok(vec![v.to_string()])))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Ids, E> {
                Ok(Ids(Err("subscriptionId is negative".to_owned())))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Ids, E> {
                Ok(Ids(Err(
                    "subscriptionId is a number too large to be exact".to_owned()
                )))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Ids, E> {
                Ok(Ids(Err("subscriptionId is a boolean".to_owned())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Ids, E> {
                Ok(Ids(Err("subscriptionId is null".to_owned())))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Ids, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Ids(Err("subscriptionId is an object".to_owned())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Ids, A::Error> {
                let mut out = Ok(Vec::new());
                while let Some(x) = s.next_element::<Scalar>()? {
                    let x = match x.0 {
                        Some(x) => one(&x),
                        None => Err("subscriptionId holds a non-scalar".to_owned()),
                    };
                    out = match (out, x) {
                        (Ok(mut v), Ok(x)) => {
                            v.push(x);
                            Ok(v)
                        }
                        (Err(e), _) | (_, Err(e)) => Err(e),
                    };
                }
                Ok(Ids(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// The whole document.
struct DocSeed;

impl<'de> DeserializeSeed<'de> for DocSeed {
    type Value = Result<Doc, String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DocSeed {
    type Value = Result<Doc, String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let mut doc = Doc {
            format: Format::Json,
            total_count: None,
            ids: None,
            has_imdata: false,
            entries: Vec::new(),
        };
        let mut imdata_ok = true;
        let mut bare = Vec::new();
        while let Some(Key(k)) = m.next_key::<Key>()? {
            match &*k {
                "totalCount" => doc.total_count = m.next_value::<Scalar>()?.0,
                "subscriptionId" => doc.ids = Some(m.next_value::<Ids>()?.0),
                "imdata" => {
                    doc.has_imdata = true;
                    imdata_ok = m.next_value_seed(EntriesSeed {
                        out: &mut doc.entries,
                        depth: 0,
                    })?;
                }
                _ => {
                    // A bare object keyed by class (NX-OS documents the login answer so).
                    if let Ok(body) = m.next_value_seed(BodySeed { depth: 0 })? {
                        bare.push(Ok(RawMo {
                            class_name: k.into_owned(),
                            attributes: body.0,
                            children: body.1,
                        }));
                    }
                }
            }
        }
        if !imdata_ok {
            return Ok(Err("imdata is not an array".to_owned()));
        }
        if !doc.has_imdata {
            doc.entries = bare;
        }
        Ok(Ok(doc))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
        while s.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Err("the document is an array, not an object".to_owned()))
    }
    reject_scalars!(Self::Value, |what| Err(format!(
        "the document is {what}, not an object"
    )));
}

/// An array of entries (`imdata`, `children`), appended to `out`. Yields `false` when the value
/// was not an array.
struct EntriesSeed<'a> {
    out: &'a mut Vec<Result<RawMo, String>>,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for EntriesSeed<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EntriesSeed<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<bool, A::Error> {
        if let Some(n) = s.size_hint() {
            self.out.reserve(n.min(4096));
        }
        while let Some(entry) = s.next_element_seed(EntrySeed { depth: self.depth })? {
            self.out.extend(entry);
        }
        Ok(true)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<bool, A::Error> {
        while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }
    reject_scalars!(bool, |_what| false);
}

/// One entry `{"<class>": {"attributes": {...}, "children": [...]}}`. Usually one key; every key is
/// read. A non-object entry yields one error.
struct EntrySeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for EntrySeed {
    type Value = Vec<Result<RawMo, String>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

fn not_object<T>(what: &str) -> Vec<Result<T, String>> {
    vec![Err(format!("entry is {what}, not an object"))]
}

impl<'de> Visitor<'de> for EntrySeed {
    type Value = Vec<Result<RawMo, String>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an MO entry")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(1);
        while let Some(Key(class)) = m.next_key::<Key>()? {
            let body = m.next_value_seed(BodySeed { depth: self.depth })?;
            out.push(body.map(|(attributes, children)| RawMo {
                class_name: class.into_owned(),
                attributes,
                children,
            }));
        }
        if out.is_empty() {
            out.push(Err("entry is an empty object".to_owned()));
        }
        Ok(out)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
        while s.next_element::<IgnoredAny>()?.is_some() {}
        Ok(not_object("an array"))
    }
    reject_scalars!(Self::Value, |what| not_object(what));
}

type Body = (Attributes, Vec<Result<RawMo, String>>);

/// The body of an entry: `attributes` (a map of scalars) and optional `children`.
struct BodySeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for BodySeed {
    type Value = Result<Body, String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

fn not_body(what: &str) -> Result<Body, String> {
    Err(format!("object body is {what}, not an object"))
}

impl<'de> Visitor<'de> for BodySeed {
    type Value = Result<Body, String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an MO body")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let mut attributes = Attributes::new();
        let mut children = Vec::new();
        let mut problem = None;
        while let Some(Key(k)) = m.next_key::<Key>()? {
            match &*k {
                "attributes" => {
                    if !m.next_value_seed(AttrsSeed(&mut attributes))? {
                        problem = Some("attributes is not an object".to_owned());
                    }
                }
                "children" if self.depth < MAX_DEPTH => {
                    if !m.next_value_seed(EntriesSeed {
                        out: &mut children,
                        depth: self.depth + 1,
                    })? {
                        problem = Some("children is not an array".to_owned());
                    }
                }
                "children" => {
                    m.next_value::<IgnoredAny>()?;
                    problem = Some(format!("children nested deeper than {MAX_DEPTH}"));
                }
                _ => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(match problem {
            Some(p) => Err(p),
            None => Ok((attributes, children)),
        })
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
        while s.next_element::<IgnoredAny>()?.is_some() {}
        Ok(not_body("an array"))
    }
    reject_scalars!(Self::Value, |what| not_body(what));
}

/// `attributes`: fills the map; yields `false` when the value was not an object.
struct AttrsSeed<'a>(&'a mut Attributes);

impl<'de> DeserializeSeed<'de> for AttrsSeed<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AttrsSeed<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an attributes object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<bool, A::Error> {
        while let Some(Key(k)) = m.next_key::<Key>()? {
            if let Some(v) = m.next_value::<Scalar>()?.0 {
                self.0.insert(k.into_owned(), v);
            }
        }
        Ok(true)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<bool, A::Error> {
        while s.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }
    reject_scalars!(bool, |_what| false);
}

/// `subscriptionId` on its own (the text of its value), for the slicing reader of
/// [`super::stream`]. `Err` carries a safe detail (positions and kinds, never values).
pub(crate) fn read_ids(value: &str) -> Result<Vec<String>, String> {
    let mut de = serde_json::Deserializer::from_str(value);
    let ids = Ids::deserialize(&mut de).map_err(|e| format!("invalid JSON ({e})"))?;
    de.end().map_err(|e| format!("invalid JSON ({e})"))?;
    ids.0
}

/// One `imdata` entry on its own (the text of one array element), for the slicing reader of
/// [`super::stream`]: the same reading as inside a whole document, so a sliced frame yields the
/// same objects as an unsliced one. A syntax error fails this entry only.
pub(crate) fn read_entry(entry: &str) -> Vec<Result<RawMo, String>> {
    let mut de = serde_json::Deserializer::from_str(entry);
    match (EntrySeed { depth: 0 }).deserialize(&mut de) {
        Ok(v) => match de.end() {
            Ok(()) => v,
            Err(e) => vec![Err(syntax_detail(&e))],
        },
        Err(e) => vec![Err(syntax_detail(&e))],
    }
}
