//! Query building: class and DN queries, node-scoped forms and every option of PROTOCOL.md §4,
//! rendered as `/api/...json?...` (or `.xml`) with the minimal encoding real APICs accept.
//!
//! Validation happens at render time ([`Query::render`]) so a query can be built up option by
//! option; everything that could change the meaning of the request line (`?`, `&`, `#`, raw
//! whitespace, control characters, path escapes) is refused with a [`QueryError`].

use super::encoding::{
    check_class, check_dn, is_filter_char, is_include_char, is_order_char, percent_decode,
    push_encoded,
};
use super::error::QueryError;

/// Request lines over this many bytes are refused (devices reject 4 to 8 KB).
pub const MAX_REQUEST_LINE: usize = 4096;

/// The document encoding of a query and of the pushes for its subscription.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Format {
    #[default]
    Json,
    Xml,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Xml => "xml",
        }
    }
}

/// What the query selects.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// Every object of a class: `/api/class/<class>` (or `/api/node/class/<class>`, or with a
    /// scope `/api/node/class/<scope dn>/<class>`, e.g. one switch's interfaces).
    Class {
        class: String,
        scope: Option<String>,
    },
    /// One object (and with `query-target`, its children or subtree): `/api/mo/<dn>`.
    Dn { dn: String },
}

/// `query-target`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QueryTarget {
    SelfOnly,
    Children,
    Subtree,
}

/// `rsp-subtree`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RspSubtree {
    No,
    Children,
    Full,
}

/// `rsp-prop-include`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RspPropInclude {
    All,
    NamingOnly,
    ConfigOnly,
}

macro_rules! wire_enum {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(<$t>::$v => $s),* }
            }
            pub fn parse(s: &str) -> Option<$t> {
                match s { $($s => Some(<$t>::$v),)* _ => None }
            }
        }
    };
}
wire_enum!(QueryTarget { SelfOnly => "self", Children => "children", Subtree => "subtree" });
wire_enum!(RspSubtree { No => "no", Children => "children", Full => "full" });
wire_enum!(RspPropInclude { All => "all", NamingOnly => "naming-only", ConfigOnly => "config-only" });

/// The options of a query. `None` / empty means "not sent".
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct QueryOptions {
    pub query_target: Option<QueryTarget>,
    pub target_subtree_class: Vec<String>,
    pub query_target_filter: Option<String>,
    pub rsp_subtree: Option<RspSubtree>,
    pub rsp_subtree_class: Vec<String>,
    pub rsp_subtree_include: Vec<String>,
    pub rsp_prop_include: Option<RspPropInclude>,
    pub order_by: Vec<String>,
    pub page: Option<u32>,
    pub page_size: Option<u32>,
    /// `refresh-timeout=<seconds>`: the subscription's lifetime (APIC 3.2(3)+).
    pub refresh_timeout: Option<u32>,
    /// `subscription=yes|no`.
    pub subscription: Option<bool>,
}

/// A class or DN query with its options.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Query {
    pub target: Target,
    /// Use the `/api/node/...` form.
    pub node: bool,
    pub format: Format,
    pub options: QueryOptions,
}

impl Query {
    /// `/api/class/<class>.json`.
    pub fn class(class: impl Into<String>) -> Query {
        Query::new(Target::Class {
            class: class.into(),
            scope: None,
        })
    }

    /// `/api/mo/<dn>.json`.
    pub fn dn(dn: impl Into<String>) -> Query {
        Query::new(Target::Dn { dn: dn.into() })
    }

    fn new(target: Target) -> Query {
        Query {
            target,
            node: false,
            format: Format::Json,
            options: QueryOptions::default(),
        }
    }

    /// Switches to the node-scoped form (`/api/node/class/..`, `/api/node/mo/..`).
    pub fn node(mut self) -> Query {
        self.node = true;
        self
    }

    /// A class query below one object, e.g. `/api/node/class/topology/pod-1/node-101/l1PhysIf.json`.
    /// Implies the node form.
    pub fn under(mut self, scope_dn: impl Into<String>) -> Query {
        if let Target::Class { scope, .. } = &mut self.target {
            *scope = Some(scope_dn.into());
            self.node = true;
        }
        self
    }

    pub fn format(mut self, format: Format) -> Query {
        self.format = format;
        self
    }

    /// Sets `subscription=yes`.
    pub fn subscribe(mut self) -> Query {
        self.options.subscription = Some(true);
        self
    }

    /// The class name of a class query.
    pub fn class_name(&self) -> Option<&str> {
        match &self.target {
            Target::Class { class, .. } => Some(class),
            Target::Dn { .. } => None,
        }
    }

    /// Checks every part without rendering.
    pub fn validate(&self) -> Result<(), QueryError> {
        self.render().map(|_| ())
    }

    /// Renders the path and query string, e.g.
    /// `/api/class/fvBD.json?query-target-filter=eq(fvBD.name,%22web%22)&subscription=yes`.
    pub fn render(&self) -> Result<String, QueryError> {
        let mut out = String::with_capacity(96);
        out.push_str(if self.node { "/api/node/" } else { "/api/" });
        match &self.target {
            Target::Class { class, scope } => {
                check_class(class)?;
                out.push_str("class/");
                if let Some(scope) = scope {
                    if !self.node {
                        return Err(QueryError::InvalidDn(
                            "a scoped class query needs the node form",
                        ));
                    }
                    check_dn(scope)?;
                    out.push_str(scope);
                    out.push('/');
                }
                out.push_str(class);
            }
            Target::Dn { dn } => {
                check_dn(dn)?;
                out.push_str("mo/");
                out.push_str(dn);
            }
        }
        out.push('.');
        out.push_str(self.format.extension());
        let o = &self.options;
        let mut params = Params::new(&mut out);
        if let Some(t) = o.query_target {
            params.raw("query-target", t.as_str());
        }
        if !o.target_subtree_class.is_empty() {
            params.class_list("target-subtree-class", &o.target_subtree_class)?;
        }
        if let Some(f) = &o.query_target_filter {
            params.filter("query-target-filter", f)?;
        }
        if let Some(r) = o.rsp_subtree {
            params.raw("rsp-subtree", r.as_str());
        }
        if !o.rsp_subtree_class.is_empty() {
            params.class_list("rsp-subtree-class", &o.rsp_subtree_class)?;
        }
        if !o.rsp_subtree_include.is_empty() {
            params.word_list(
                "rsp-subtree-include",
                &o.rsp_subtree_include,
                is_include_char,
            )?;
        }
        if let Some(p) = o.rsp_prop_include {
            params.raw("rsp-prop-include", p.as_str());
        }
        if !o.order_by.is_empty() {
            params.word_list("order-by", &o.order_by, is_order_char)?;
        }
        if let Some(p) = o.page {
            params.raw("page", &p.to_string());
        }
        if let Some(p) = o.page_size {
            if p == 0 {
                return Err(QueryError::InvalidValue {
                    option: "page-size",
                    reason: "must be at least 1",
                });
            }
            params.raw("page-size", &p.to_string());
        }
        if let Some(t) = o.refresh_timeout {
            if t == 0 {
                return Err(QueryError::InvalidValue {
                    option: "refresh-timeout",
                    reason: "must be at least 1 second",
                });
            }
            params.raw("refresh-timeout", &t.to_string());
        }
        if let Some(s) = o.subscription {
            params.raw("subscription", if s { "yes" } else { "no" });
        }
        // "GET " + path + " HTTP/1.1"
        let line = out.len() + 13;
        if line > MAX_REQUEST_LINE {
            return Err(QueryError::TooLong(line));
        }
        Ok(out)
    }

    /// Parses a path rendered by [`Query::render`] (or written by hand in the same form) back
    /// into a query. Percent-escapes in the filter are decoded.
    pub fn parse(path: &str) -> Result<Query, QueryError> {
        let (path, qs) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let (node, rest) = if let Some(r) = path.strip_prefix("/api/node/") {
            (true, r)
        } else if let Some(r) = path.strip_prefix("/api/") {
            (false, r)
        } else {
            return Err(QueryError::BadPath("a query path starts with /api/"));
        };
        let (rest, format) = if let Some(r) = rest.strip_suffix(".json") {
            (r, Format::Json)
        } else if let Some(r) = rest.strip_suffix(".xml") {
            (r, Format::Xml)
        } else {
            return Err(QueryError::BadPath("a query path ends in .json or .xml"));
        };
        let target = if let Some(r) = rest.strip_prefix("class/") {
            match r.rsplit_once('/') {
                Some((scope, class)) => Target::Class {
                    class: class.to_owned(),
                    scope: Some(scope.to_owned()),
                },
                None => Target::Class {
                    class: r.to_owned(),
                    scope: None,
                },
            }
        } else if let Some(r) = rest.strip_prefix("mo/") {
            Target::Dn { dn: r.to_owned() }
        } else {
            return Err(QueryError::BadPath("expected class/ or mo/"));
        };
        let mut q = Query {
            target,
            node,
            format,
            options: QueryOptions::default(),
        };
        for pair in qs.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or(QueryError::BadPath("a parameter without '='"))?;
            let bad = |option| QueryError::InvalidValue {
                option,
                reason: "not a recognised value",
            };
            let list = |v: &str| v.split(',').map(str::to_owned).collect::<Vec<_>>();
            let num = |option, v: &str| v.parse::<u32>().map_err(|_| bad(option));
            let o = &mut q.options;
            match k {
                "query-target" => {
                    o.query_target = Some(QueryTarget::parse(v).ok_or(bad("query-target"))?)
                }
                "target-subtree-class" => o.target_subtree_class = list(v),
                "query-target-filter" => o.query_target_filter = Some(percent_decode(v)?),
                "rsp-subtree" => {
                    o.rsp_subtree = Some(RspSubtree::parse(v).ok_or(bad("rsp-subtree"))?)
                }
                "rsp-subtree-class" => o.rsp_subtree_class = list(v),
                "rsp-subtree-include" => o.rsp_subtree_include = list(v),
                "rsp-prop-include" => {
                    o.rsp_prop_include =
                        Some(RspPropInclude::parse(v).ok_or(bad("rsp-prop-include"))?)
                }
                "order-by" => o.order_by = list(v),
                "page" => o.page = Some(num("page", v)?),
                "page-size" => o.page_size = Some(num("page-size", v)?),
                "refresh-timeout" => o.refresh_timeout = Some(num("refresh-timeout", v)?),
                "subscription" => {
                    o.subscription = Some(match v {
                        "yes" => true,
                        "no" => false,
                        _ => return Err(bad("subscription")),
                    })
                }
                _ => return Err(QueryError::BadPath("unknown query parameter")),
            }
        }
        q.validate()?;
        Ok(q)
    }
}

/// Appends `?k=v&k=v` parameters.
struct Params<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Params<'a> {
    fn new(out: &'a mut String) -> Params<'a> {
        Params { out, first: true }
    }

    fn key(&mut self, k: &str) {
        self.out.push(if self.first { '?' } else { '&' });
        self.first = false;
        self.out.push_str(k);
        self.out.push('=');
    }

    fn raw(&mut self, k: &str, v: &str) {
        self.key(k);
        self.out.push_str(v);
    }

    fn class_list(&mut self, k: &'static str, classes: &[String]) -> Result<(), QueryError> {
        for c in classes {
            check_class(c)?;
        }
        self.raw(k, &classes.join(","));
        Ok(())
    }

    fn word_list(
        &mut self,
        k: &'static str,
        words: &[String],
        ok: fn(char) -> bool,
    ) -> Result<(), QueryError> {
        for w in words {
            if w.is_empty() || !w.chars().all(ok) {
                return Err(QueryError::InvalidValue {
                    option: k,
                    reason: "contains a character that is not allowed there",
                });
            }
        }
        self.raw(k, &words.join(","));
        Ok(())
    }

    /// A filter such as `and(eq(fvBD.name,"web"),wcard(fvBD.descr,"prod"))`. Outside quoted
    /// strings only the filter grammar's characters are allowed; inside them anything printable
    /// except the request-changing `?`, `&`, `#`. `"` travels as `%22`; `, ( ) | [ ] /` stay
    /// literal (PROTOCOL.md §4).
    fn filter(&mut self, k: &'static str, f: &str) -> Result<(), QueryError> {
        let err = |reason| QueryError::InvalidValue { option: k, reason };
        if f.is_empty() {
            return Err(err("is empty"));
        }
        self.key(k);
        let mut quoted = false;
        for c in f.chars() {
            if c.is_control() {
                return Err(err("contains a control character"));
            }
            if matches!(c, '?' | '&' | '#') {
                return Err(err(
                    "contains '?', '&' or '#', which would change the request",
                ));
            }
            if c == '"' {
                quoted = !quoted;
                self.out.push_str("%22");
                continue;
            }
            if !quoted && !is_filter_char(c) {
                return Err(err(
                    "contains a character outside the filter grammar (whitespace is only allowed inside quotes)",
                ));
            }
            push_encoded(self.out, c);
        }
        if quoted {
            return Err(err("has an unterminated quoted string"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_class_and_dn_forms() {
        assert_eq!(
            Query::class("fvTenant").subscribe().render().unwrap(),
            "/api/class/fvTenant.json?subscription=yes"
        );
        assert_eq!(
            Query::dn("sys/intf/phys-[eth1/1]")
                .subscribe()
                .render()
                .unwrap(),
            "/api/mo/sys/intf/phys-[eth1/1].json?subscription=yes"
        );
        assert_eq!(
            Query::class("faultInst").node().render().unwrap(),
            "/api/node/class/faultInst.json"
        );
        assert_eq!(
            Query::class("l1PhysIf")
                .under("topology/pod-1/node-101")
                .format(Format::Xml)
                .render()
                .unwrap(),
            "/api/node/class/topology/pod-1/node-101/l1PhysIf.xml"
        );
        assert_eq!(
            Query::dn("uni/tn-acme").node().render().unwrap(),
            "/api/node/mo/uni/tn-acme.json"
        );
    }

    #[test]
    fn renders_every_option_minimally_encoded() {
        let mut q = Query::dn("uni/tn-acme");
        q.options = QueryOptions {
            query_target: Some(QueryTarget::Subtree),
            target_subtree_class: vec!["fvBD".into(), "fvAEPg".into()],
            query_target_filter: Some(
                r#"and(eq(fvBD.name,"web 1"),ne(fvBD.descr,"a/b[c]"))"#.into(),
            ),
            rsp_subtree: Some(RspSubtree::Full),
            rsp_subtree_class: vec!["fvSubnet".into()],
            rsp_subtree_include: vec!["faults".into(), "no-scoped".into()],
            rsp_prop_include: Some(RspPropInclude::ConfigOnly),
            order_by: vec!["fvBD.name|desc".into()],
            page: Some(2),
            page_size: Some(100),
            refresh_timeout: Some(900),
            subscription: Some(true),
        };
        let r = q.render().unwrap();
        assert_eq!(
            r,
            "/api/mo/uni/tn-acme.json?query-target=subtree&target-subtree-class=fvBD,fvAEPg\
             &query-target-filter=and(eq(fvBD.name,%22web%201%22),ne(fvBD.descr,%22a/b[c]%22))\
             &rsp-subtree=full&rsp-subtree-class=fvSubnet&rsp-subtree-include=faults,no-scoped\
             &rsp-prop-include=config-only&order-by=fvBD.name|desc&page=2&page-size=100\
             &refresh-timeout=900&subscription=yes"
        );
        assert_eq!(Query::parse(&r).unwrap(), q);
    }

    #[test]
    fn refuses_bad_class_names() {
        for c in [
            "",
            "1fv",
            "fv Tenant",
            "fv-Tenant",
            "fvTenant.json?x=1",
            "fv/../x",
        ] {
            assert!(
                matches!(Query::class(c).render(), Err(QueryError::InvalidClass(_))),
                "{c:?}"
            );
        }
    }

    #[test]
    fn refuses_injection_in_dns_and_values() {
        for dn in [
            "",
            "uni/tn-a?subscription=no",
            "uni/tn-a#x",
            "uni/tn-a&page=1",
            "uni/tn a",
            "uni/../../api/aaaLogout",
            "/uni/tn-a",
            "uni//tn-a",
            "uni/tn-%3F",
            "uni/tn-a\n",
            "uni/tn-[a",
        ] {
            assert!(Query::dn(dn).render().is_err(), "{dn:?}");
        }
        for f in [
            r#"eq(fvTenant.name,"a")&subscription=no"#,
            r#"eq(fvTenant.name,"a#b")"#,
            "eq(fvTenant.name, x)",
            r#"eq(fvTenant.name,"a)"#,
            "eq(fvTenant.name,\"a\nb\")",
        ] {
            let mut q = Query::class("fvTenant");
            q.options.query_target_filter = Some(f.into());
            assert!(q.render().is_err(), "{f:?}");
        }
        let mut q = Query::class("fvTenant");
        q.options.order_by = vec!["name&x=1".into()];
        assert!(q.render().is_err());
        let mut q = Query::class("fvTenant");
        q.options.target_subtree_class = vec!["fvBD,fvCtx".into()];
        assert!(q.render().is_err());
    }

    /// Brackets keep a `/` inside a DN segment (`phys-[eth1/1]`), but a URL parser splits the
    /// path on every `/` and resolves `.` and `..` wherever they are: inside brackets they would
    /// still climb out of `/api/mo/`.
    #[test]
    fn refuses_dot_segments_inside_brackets() {
        for dn in [
            "uni/x-[/../../../aaaLogout]",
            "sys/intf/phys-[eth1/../../../../api/aaaLogout]",
            "uni/tn-a/x-[a/./b]",
        ] {
            assert!(check_dn(dn).is_err(), "{dn:?}");
            assert!(Query::dn(dn).render().is_err(), "{dn:?}");
        }
        assert!(Query::class("l1PhysIf")
            .under("topology/pod-1/node-[/../../..]")
            .render()
            .is_err());
        // Dots that are not whole segments stay allowed.
        assert!(check_dn("uni/tn-a/BD-b/subnet-[10.0.0.1/24]").is_ok());
        assert!(check_dn("uni/x-[a../..b]").is_ok());
        assert!(check_dn("uni/x-[..]/y-[a/..]").is_ok());
    }

    #[test]
    fn keeps_dn_characters_literal() {
        let dn = "uni/usersessext/actsession-CwqM+/a==/x";
        assert!(check_dn("uni/tn-a/BD-b/subnet-[10.0.0.1/24]").is_ok());
        assert!(check_dn("uni/tn-a/ap-b/epg-c/cep-00:50:56:AA:BB:CC").is_ok());
        assert!(check_dn("uni/tn-x/BD-y/subnet-[2001:db8::1/64]").is_ok());
        assert_eq!(
            Query::dn(dn).render().unwrap(),
            format!("/api/mo/{dn}.json")
        );
    }

    #[test]
    fn refuses_request_lines_over_4k() {
        let long = format!("uni/tn-{}", "a".repeat(5000));
        assert!(matches!(
            Query::dn(long).render(),
            Err(QueryError::TooLong(_))
        ));
        let ok = format!("uni/tn-{}", "a".repeat(3000));
        assert!(Query::dn(ok).render().is_ok());
    }

    #[test]
    fn non_ascii_inside_filter_quotes_is_percent_encoded() {
        let mut q = Query::class("fvTenant");
        q.options.query_target_filter = Some(r#"eq(fvTenant.descr,"café+50%")"#.into());
        let r = q.render().unwrap();
        assert!(
            r.ends_with("eq(fvTenant.descr,%22caf%C3%A9%2B50%25%22)"),
            "{r}"
        );
        assert_eq!(Query::parse(&r).unwrap(), q);
    }
}
