//! A read query as the device sees it: its target, options, execution against the MIT, and
//! which changes its subscription is pushed.

use std::collections::HashSet;

use crate::catalog::Catalog;
use crate::mit::{Attrs, Change, Mit, Mo};
use crate::util::{in_subtree, parent_dn, split_dn};

mod filter;

use filter::cmp_values;
pub use filter::{parse_filter, wildcard, Filter};

/// `query-target` (named as in the client's protocol layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryTarget {
    SelfOnly,
    Children,
    Subtree,
}

/// `rsp-subtree`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RspSubtree {
    No,
    Children,
    Full,
}

/// `rsp-prop-include`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RspPropInclude {
    All,
    NamingOnly,
    ConfigOnly,
}

/// What the query selects.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// `/api/class/<cls>` or `/api/class/<dn>/<cls>` (class objects under `scope`).
    Class {
        class: String,
        scope: Option<String>,
    },
    /// `/api/mo/<dn>`.
    Dn { dn: String },
}

#[derive(Debug, Clone)]
pub struct Query {
    pub target: Target,
    pub query_target: QueryTarget,
    pub target_subtree_class: Option<Vec<String>>,
    pub filter: Option<Filter>,
    pub rsp_subtree: RspSubtree,
    pub rsp_subtree_class: Option<Vec<String>>,
    pub rsp_prop_include: RspPropInclude,
    pub order_by: Option<(String, String, bool)>,
    pub page: usize,
    pub page_size: Option<usize>,
    pub subscription: bool,
    pub refresh_timeout: Option<u64>,
}

/// A query failure: HTTP status and the error text.
pub type QErr = (u16, String);

fn bad(text: impl Into<String>) -> QErr {
    (400, text.into())
}

fn class_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

impl Query {
    /// Build a query from its scope and decoded parameters. Checks classes against the catalogue.
    pub fn parse(
        target: Target,
        params: &[(String, String)],
        cat: &Catalog,
    ) -> Result<Query, QErr> {
        if let Target::Class { class, .. } = &target {
            if !cat.knows(class) {
                return Err(bad(format!("Request failed, unresolved class for {class}")));
            }
        }
        let mut q = Query {
            target,
            query_target: QueryTarget::SelfOnly,
            target_subtree_class: None,
            filter: None,
            rsp_subtree: RspSubtree::No,
            rsp_subtree_class: None,
            rsp_prop_include: RspPropInclude::All,
            order_by: None,
            page: 0,
            page_size: None,
            subscription: false,
            refresh_timeout: None,
        };
        for (k, v) in params {
            match k.as_str() {
                "query-target" => {
                    q.query_target = match v.as_str() {
                        "self" => QueryTarget::SelfOnly,
                        "children" => QueryTarget::Children,
                        "subtree" => QueryTarget::Subtree,
                        _ => return Err(bad(format!("Invalid value '{v}' for query-target"))),
                    }
                }
                "target-subtree-class" => {
                    let l = class_list(v);
                    for c in &l {
                        if !cat.knows(c) {
                            return Err(bad(format!("Request failed, unresolved class for {c}")));
                        }
                    }
                    q.target_subtree_class = Some(l);
                }
                "query-target-filter" => q.filter = Some(parse_filter(v)?),
                "rsp-subtree" => {
                    q.rsp_subtree = match v.as_str() {
                        "no" => RspSubtree::No,
                        "children" => RspSubtree::Children,
                        "full" => RspSubtree::Full,
                        _ => return Err(bad(format!("Invalid value '{v}' for rsp-subtree"))),
                    }
                }
                "rsp-subtree-class" => q.rsp_subtree_class = Some(class_list(v)),
                "rsp-prop-include" => {
                    q.rsp_prop_include = match v.as_str() {
                        "all" => RspPropInclude::All,
                        "naming-only" => RspPropInclude::NamingOnly,
                        "config-only" => RspPropInclude::ConfigOnly,
                        _ => return Err(bad(format!("Invalid value '{v}' for rsp-prop-include"))),
                    }
                }
                "order-by" => {
                    // cls.prop|asc or cls.prop|desc (first key only)
                    let first = v.split(',').next().unwrap_or("");
                    let (cp, dir) = first.split_once('|').unwrap_or((first, "asc"));
                    let (c, p) = cp
                        .split_once('.')
                        .ok_or_else(|| bad(format!("Invalid value '{v}' for order-by")))?;
                    q.order_by = Some((c.to_string(), p.to_string(), dir == "desc"));
                }
                "page" => {
                    q.page = v
                        .parse::<usize>()
                        .map_err(|_| bad(format!("Invalid value '{v}' for page")))?
                }
                "page-size" => {
                    let n = v
                        .parse::<usize>()
                        .map_err(|_| bad(format!("Invalid value '{v}' for page-size")))?;
                    if n == 0 {
                        return Err(bad("Invalid value '0' for page-size"));
                    }
                    q.page_size = Some(n);
                }
                "subscription" => q.subscription = v == "yes",
                "refresh-timeout" => {
                    let n = v
                        .parse::<u64>()
                        .map_err(|_| bad(format!("Invalid value '{v}' for refresh-timeout")))?;
                    q.refresh_timeout = Some(n);
                }
                _ => {}
            }
        }
        Ok(q)
    }

    /// Short description for stats.
    pub fn describe(&self) -> String {
        match &self.target {
            Target::Class { class, scope: None } => format!("class/{class}"),
            Target::Class {
                class,
                scope: Some(u),
            } => format!("class/{u}/{class}"),
            Target::Dn { dn } => format!("mo/{dn}"),
        }
    }

    /// Candidate DNs (before filter, paging), in DN order.
    fn candidates(&self, mit: &Mit) -> Vec<String> {
        let roots: Vec<String> = match &self.target {
            Target::Class { class, scope } => {
                let mut r = mit.class_dns(class);
                if let Some(u) = scope {
                    r.retain(|d| in_subtree(d, u));
                }
                r
            }
            Target::Dn { dn } => {
                if mit.contains(dn) {
                    vec![dn.clone()]
                } else {
                    Vec::new()
                }
            }
        };
        let mut out = match self.query_target {
            QueryTarget::SelfOnly => return roots,
            QueryTarget::Children => roots
                .iter()
                .flat_map(|r| mit.children_of(r))
                .collect::<Vec<_>>(),
            QueryTarget::Subtree => roots
                .iter()
                .flat_map(|r| mit.subtree(r))
                .collect::<Vec<_>>(),
        };
        if roots.len() > 1 {
            let mut seen = HashSet::new();
            out.retain(|d| seen.insert(d.clone()));
        }
        if let Some(tsc) = &self.target_subtree_class {
            out.retain(|d| mit.get(d).is_some_and(|m| tsc.contains(&m.class)));
        }
        out.sort();
        out
    }

    /// Execute: (totalCount, the page of DNs).
    pub fn run(&self, mit: &Mit, max_result: usize) -> Result<(usize, Vec<String>), QErr> {
        let mut dns = self.candidates(mit);
        if let Some(f) = &self.filter {
            dns.retain(|d| {
                mit.get(d)
                    .is_some_and(|m| f.eval_dn(&m.class, Some(d), &m.attrs))
            });
        }
        if let Some((c, p, desc)) = &self.order_by {
            let key = |d: &String| -> String {
                mit.get(d)
                    .filter(|m| m.class == *c)
                    .and_then(|m| m.attrs.get(p).cloned())
                    .unwrap_or_default()
            };
            dns.sort_by(|a, b| {
                let o = cmp_values(&key(a), &key(b)).then_with(|| a.cmp(b));
                if *desc {
                    o.reverse()
                } else {
                    o
                }
            });
        }
        let total = dns.len();
        match self.page_size {
            None => {
                if total > max_result {
                    return Err(bad(
                        "Unable to process the query, result dataset is too big",
                    ));
                }
                Ok((total, dns))
            }
            Some(ps) => {
                let start = self.page.saturating_mul(ps);
                let page: Vec<String> = dns
                    .into_iter()
                    .skip(start)
                    .take(ps.min(max_result))
                    .collect();
                Ok((total, page))
            }
        }
    }

    /// Does a change match this query (for pushes)?
    pub fn matches(&self, ch: &Change, mit: &Mit, cat: &Catalog) -> bool {
        let dn = ch.dn.as_str();
        let in_scope = match (&self.target, self.query_target) {
            (Target::Dn { dn: root }, QueryTarget::SelfOnly) => dn == root,
            (Target::Dn { dn: root }, QueryTarget::Children) => parent_dn(dn) == root,
            (Target::Dn { dn: root }, QueryTarget::Subtree) => in_subtree(dn, root),
            (Target::Class { class, scope }, t) => {
                if let Some(u) = scope {
                    if !in_subtree(dn, u) {
                        return false;
                    }
                }
                match t {
                    QueryTarget::SelfOnly => ch.class == *class,
                    QueryTarget::Children => {
                        class_at(mit, cat, parent_dn(dn)).as_deref() == Some(class.as_str())
                    }
                    QueryTarget::Subtree => {
                        if ch.class == *class {
                            true
                        } else {
                            let mut d = parent_dn(dn);
                            let mut hit = false;
                            while !d.is_empty() {
                                if class_at(mit, cat, d).as_deref() == Some(class.as_str()) {
                                    hit = true;
                                    break;
                                }
                                d = parent_dn(d);
                            }
                            hit
                        }
                    }
                }
            }
        };
        if !in_scope {
            return false;
        }
        if self.query_target != QueryTarget::SelfOnly {
            if let Some(tsc) = &self.target_subtree_class {
                if !tsc.contains(&ch.class) {
                    return false;
                }
            }
        }
        match &self.filter {
            Some(f) => f.eval_dn(&ch.class, Some(&ch.dn), &ch.full),
            None => true,
        }
    }
}

/// The class of the object at `dn`: from the tree, or guessed from its RN when it is gone.
pub fn class_at(mit: &Mit, cat: &Catalog, dn: &str) -> Option<String> {
    if let Some(m) = mit.get(dn) {
        return Some(m.class.clone());
    }
    let rn = split_dn(dn).1;
    cat.class_of_rn(rn).map(str::to_string)
}

/// Apply `rsp-prop-include` to a copy of the attributes.
pub fn prop_filter(mo: &Mo, inc: RspPropInclude, cat: &Catalog) -> Attrs {
    match inc {
        RspPropInclude::All | RspPropInclude::ConfigOnly => mo.attrs.clone(),
        RspPropInclude::NamingOnly => {
            let naming = cat.get(&mo.class).map(|c| c.naming()).unwrap_or_default();
            mo.attrs
                .iter()
                .filter(|(k, _)| naming.iter().any(|n| n == *k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }
    }
}
