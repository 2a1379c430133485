//! The query builder. Structured input builds a `Query` (DNs and values assembled from pieces that
//! matter to a request line: separators, brackets, dot segments, `?`, `&`, `#`, `%`, blanks); it
//! must either be refused with a typed `QueryError` or render a request path that
//! - fits the 4 KB request line,
//! - is printable ASCII with no `#`, no `"`, no blank, at most one `?`,
//! - carries exactly the parameters the query set, each once, in the documented order,
//! - has no `.` or `..` path segment (nothing climbs out of `/api/mo/` once a URL parser
//!   normalises the path),
//! - and parses back to the same query, rendering the same path again.
//!
//! The raw string of the input also goes through `Query::parse`, whose results must render.
#![no_main]

use arbitrary::Arbitrary;
use dme_events::protocol::{
    Format, Query, QueryOptions, QueryTarget, RspPropInclude, RspSubtree, Target, MAX_REQUEST_LINE,
};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Piece {
    Word(String),
    Alnum(u8),
    Slash,
    Open,
    Close,
    Dot,
    DotDot,
    Dash,
    Question,
    Amp,
    Hash,
    Percent,
    Space,
    Equals,
    Quote,
    Comma,
    Backslash,
}

fn assemble(pieces: &[Piece]) -> String {
    let mut s = String::new();
    for p in pieces {
        match p {
            Piece::Word(w) => s.push_str(w),
            Piece::Alnum(n) => {
                let a = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
                s.push(char::from(a[usize::from(*n) % a.len()]));
            }
            Piece::Slash => s.push('/'),
            Piece::Open => s.push('['),
            Piece::Close => s.push(']'),
            Piece::Dot => s.push('.'),
            Piece::DotDot => s.push_str(".."),
            Piece::Dash => s.push('-'),
            Piece::Question => s.push('?'),
            Piece::Amp => s.push('&'),
            Piece::Hash => s.push('#'),
            Piece::Percent => s.push('%'),
            Piece::Space => s.push(' '),
            Piece::Equals => s.push('='),
            Piece::Quote => s.push('"'),
            Piece::Comma => s.push(','),
            Piece::Backslash => s.push('\\'),
        }
    }
    s
}

#[derive(Arbitrary, Debug)]
struct Input {
    dn_target: bool,
    class: Vec<Piece>,
    scope: Option<Vec<Piece>>,
    dn: Vec<Piece>,
    node: bool,
    xml: bool,
    query_target: Option<u8>,
    target_subtree_class: Vec<Vec<Piece>>,
    filter: Option<Vec<Piece>>,
    rsp_subtree: Option<u8>,
    rsp_subtree_class: Vec<Vec<Piece>>,
    rsp_subtree_include: Vec<Vec<Piece>>,
    rsp_prop_include: Option<u8>,
    order_by: Vec<Vec<Piece>>,
    page: Option<u32>,
    page_size: Option<u32>,
    refresh_timeout: Option<u32>,
    subscription: Option<bool>,
    raw: String,
}

fn list(v: &[Vec<Piece>]) -> Vec<String> {
    v.iter().map(|p| assemble(p)).collect()
}

fn build(i: &Input) -> Query {
    let target = if i.dn_target {
        Target::Dn {
            dn: assemble(&i.dn),
        }
    } else {
        Target::Class {
            class: assemble(&i.class),
            scope: i.scope.as_deref().map(assemble),
        }
    };
    Query {
        target,
        node: i.node,
        format: if i.xml { Format::Xml } else { Format::Json },
        options: QueryOptions {
            query_target: i.query_target.map(|n| {
                [
                    QueryTarget::SelfOnly,
                    QueryTarget::Children,
                    QueryTarget::Subtree,
                ][usize::from(n % 3)]
            }),
            target_subtree_class: list(&i.target_subtree_class),
            query_target_filter: i.filter.as_deref().map(assemble),
            rsp_subtree: i.rsp_subtree.map(|n| {
                [RspSubtree::No, RspSubtree::Children, RspSubtree::Full][usize::from(n % 3)]
            }),
            rsp_subtree_class: list(&i.rsp_subtree_class),
            rsp_subtree_include: list(&i.rsp_subtree_include),
            rsp_prop_include: i.rsp_prop_include.map(|n| {
                [
                    RspPropInclude::All,
                    RspPropInclude::NamingOnly,
                    RspPropInclude::ConfigOnly,
                ][usize::from(n % 3)]
            }),
            order_by: list(&i.order_by),
            page: i.page,
            page_size: i.page_size,
            refresh_timeout: i.refresh_timeout,
            subscription: i.subscription,
        },
    }
}

/// The parameter names a query must send, in rendering order.
fn expected_keys(o: &QueryOptions) -> Vec<&'static str> {
    let mut k = Vec::new();
    let mut add = |set: bool, name| {
        if set {
            k.push(name)
        }
    };
    add(o.query_target.is_some(), "query-target");
    add(!o.target_subtree_class.is_empty(), "target-subtree-class");
    add(o.query_target_filter.is_some(), "query-target-filter");
    add(o.rsp_subtree.is_some(), "rsp-subtree");
    add(!o.rsp_subtree_class.is_empty(), "rsp-subtree-class");
    add(!o.rsp_subtree_include.is_empty(), "rsp-subtree-include");
    add(o.rsp_prop_include.is_some(), "rsp-prop-include");
    add(!o.order_by.is_empty(), "order-by");
    add(o.page.is_some(), "page");
    add(o.page_size.is_some(), "page-size");
    add(o.refresh_timeout.is_some(), "refresh-timeout");
    add(o.subscription.is_some(), "subscription");
    k
}

fn check_rendered(q: &Query, path: &str) {
    assert!(path.len() + 13 <= MAX_REQUEST_LINE, "request line too long");
    assert!(path.starts_with("/api/"));
    assert!(
        path.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'#' | b'"' | b'\\')),
        "unsafe byte in {path:?}"
    );
    let (p, qs) = match path.split_once('?') {
        Some((p, qs)) => (p, Some(qs)),
        None => (path, None),
    };
    assert!(!qs.is_some_and(|qs| qs.contains('?')), "a second '?'");
    assert!(
        !p.contains('%') && !p.contains('&'),
        "escape or '&' in the path"
    );
    for seg in p.split('/') {
        assert!(seg != "." && seg != "..", "dot segment in {path:?}");
    }
    let keys: Vec<&str> = qs
        .map(|qs| {
            qs.split('&')
                .map(|kv| kv.split_once('=').expect("key=value").0)
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(keys, expected_keys(&q.options), "parameters of {path:?}");
    let back = Query::parse(path).expect("a rendered query parses");
    assert_eq!(&back, q, "round trip of {path:?}");
    assert_eq!(back.render().as_deref(), Ok(path));
}

fuzz_target!(|input: Input| {
    let q = build(&input);
    match q.render() {
        Ok(path) => check_rendered(&q, &path),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    if let Ok(q) = Query::parse(&input.raw) {
        let path = q.render().expect("a parsed query renders");
        check_rendered(&q, &path);
    }
});
