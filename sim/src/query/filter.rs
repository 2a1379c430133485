//! The `query-target-filter` language: parsing, evaluation, and `wcard` matching.

use std::collections::HashSet;

use super::{bad, QErr};
use crate::mit::Attrs;

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Cmp {
        op: String,
        class: String,
        prop: String,
        vals: Vec<String>,
    },
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
}

pub(crate) fn cmp_values(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
        _ => a.cmp(b),
    }
}

impl Filter {
    pub fn eval(&self, class: &str, attrs: &Attrs) -> bool {
        self.eval_dn(class, None, attrs)
    }

    /// Evaluate with the object's DN available as the `dn` property.
    pub fn eval_dn(&self, class: &str, dn: Option<&str>, attrs: &Attrs) -> bool {
        match self {
            Filter::And(v) => v.iter().all(|f| f.eval_dn(class, dn, attrs)),
            Filter::Or(v) => v.iter().any(|f| f.eval_dn(class, dn, attrs)),
            Filter::Not(f) => !f.eval_dn(class, dn, attrs),
            Filter::Cmp {
                op,
                class: c,
                prop,
                vals,
            } => {
                if c != class {
                    return false;
                }
                let val = match (prop.as_str(), dn) {
                    ("dn", Some(d)) => d,
                    _ => match attrs.get(prop) {
                        Some(v) => v.as_str(),
                        None => return false,
                    },
                };
                let v0 = vals.first().map(String::as_str).unwrap_or("");
                match op.as_str() {
                    "eq" => val == v0,
                    "ne" => val != v0,
                    "lt" => cmp_values(val, v0).is_lt(),
                    "gt" => cmp_values(val, v0).is_gt(),
                    "le" => cmp_values(val, v0).is_le(),
                    "ge" => cmp_values(val, v0).is_ge(),
                    "bw" => {
                        let v1 = vals.get(1).map(String::as_str).unwrap_or("");
                        cmp_values(val, v0).is_ge() && cmp_values(val, v1).is_le()
                    }
                    "wcard" => wildcard(v0, val),
                    "anybit" | "allbits" => {
                        let have: HashSet<&str> = val.split(',').map(str::trim).collect();
                        let want: Vec<&str> = v0
                            .split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .collect();
                        if op == "anybit" {
                            want.iter().any(|w| have.contains(w))
                        } else {
                            want.iter().all(|w| have.contains(w))
                        }
                    }
                    _ => false,
                }
            }
        }
    }
}

/// `wcard`: an unanchored match of a small regular-expression subset
/// (literals, `.`, `*`, `^`, `$`, `\` escapes), as the devices use it.
pub fn wildcard(pat: &str, text: &str) -> bool {
    #[derive(Clone, Copy)]
    enum Atom {
        Any,
        Ch(char),
    }
    let mut atoms: Vec<(Atom, bool)> = Vec::new();
    let mut chars = pat.chars().peekable();
    let mut anchored_start = false;
    let mut anchored_end = false;
    let mut first = true;
    while let Some(c) = chars.next() {
        let atom = match c {
            '^' if first => {
                anchored_start = true;
                first = false;
                continue;
            }
            '$' if chars.peek().is_none() => {
                anchored_end = true;
                continue;
            }
            '.' => Atom::Any,
            '\\' => Atom::Ch(chars.next().unwrap_or('\\')),
            '*' => {
                // `*` with nothing before it: match any text (glob-like use).
                if let Some(last) = atoms.last_mut() {
                    last.1 = true;
                } else {
                    atoms.push((Atom::Any, true));
                }
                first = false;
                continue;
            }
            c => Atom::Ch(c),
        };
        first = false;
        atoms.push((atom, false));
    }
    if atoms.len() > 256 {
        // Bounded recursion: such patterns do not occur in practice.
        return false;
    }
    let text: Vec<char> = text.chars().collect();
    fn m(atoms: &[(Atom, bool)], t: &[char], end: bool, budget: &mut u32) -> bool {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        let Some(&(a, star)) = atoms.first() else {
            return !end || t.is_empty();
        };
        let ok = |c: char| match a {
            Atom::Any => true,
            Atom::Ch(x) => x == c,
        };
        if star {
            let mut i = 0;
            loop {
                if m(&atoms[1..], &t[i..], end, budget) {
                    return true;
                }
                if i < t.len() && ok(t[i]) {
                    i += 1;
                } else {
                    return false;
                }
            }
        }
        !t.is_empty() && ok(t[0]) && m(&atoms[1..], &t[1..], end, budget)
    }
    let mut budget = 200_000u32;
    if anchored_start {
        return m(&atoms, &text, anchored_end, &mut budget);
    }
    (0..=text.len()).any(|i| m(&atoms, &text[i..], anchored_end, &mut budget))
}

/// Parse `query-target-filter`.
pub fn parse_filter(s: &str) -> Result<Filter, QErr> {
    let mut p = P {
        s: s.as_bytes(),
        i: 0,
        depth: 0,
    };
    let f = p.expr()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err());
    }
    Ok(f)
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
    depth: u32,
}

enum Arg {
    F(Filter),
    Prop(String, String),
    Val(String),
}

impl P<'_> {
    fn err(&self) -> QErr {
        bad(format!(
            "Unable to parse query-target-filter at position {}: {}",
            self.i,
            String::from_utf8_lossy(self.s)
        ))
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn ident(&mut self) -> String {
        let st = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
        {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[st..self.i]).into_owned()
    }

    fn expr(&mut self) -> Result<Filter, QErr> {
        self.depth += 1;
        if self.depth > 64 {
            return Err(self.err());
        }
        self.ws();
        let op = self.ident();
        self.ws();
        if op.is_empty() || self.s.get(self.i) != Some(&b'(') {
            return Err(self.err());
        }
        self.i += 1;
        let mut args = Vec::new();
        loop {
            self.ws();
            if self.s.get(self.i) == Some(&b')') {
                self.i += 1;
                break;
            }
            args.push(self.arg(&op)?);
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b')') => {
                    self.i += 1;
                    break;
                }
                _ => return Err(self.err()),
            }
        }
        self.depth -= 1;
        match op.as_str() {
            "and" | "or" => {
                let mut v = Vec::new();
                for a in args {
                    match a {
                        Arg::F(f) => v.push(f),
                        _ => return Err(self.err()),
                    }
                }
                if v.is_empty() {
                    return Err(self.err());
                }
                Ok(if op == "and" {
                    Filter::And(v)
                } else {
                    Filter::Or(v)
                })
            }
            "not" => match args.into_iter().next() {
                Some(Arg::F(f)) => Ok(Filter::Not(Box::new(f))),
                _ => Err(self.err()),
            },
            "eq" | "ne" | "lt" | "gt" | "le" | "ge" | "bw" | "wcard" | "anybit" | "allbits" => {
                let mut it = args.into_iter();
                let Some(Arg::Prop(class, prop)) = it.next() else {
                    return Err(self.err());
                };
                let mut vals = Vec::new();
                for a in it {
                    match a {
                        Arg::Val(v) => vals.push(v),
                        Arg::Prop(c, p) => vals.push(format!("{c}.{p}")),
                        Arg::F(_) => return Err(self.err()),
                    }
                }
                let need = if op == "bw" { 2 } else { 1 };
                if vals.len() != need {
                    return Err(self.err());
                }
                Ok(Filter::Cmp {
                    op,
                    class,
                    prop,
                    vals,
                })
            }
            _ => Err(self.err()),
        }
    }

    fn arg(&mut self, op: &str) -> Result<Arg, QErr> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'"') => {
                self.i += 1;
                let mut out = Vec::new();
                while let Some(&c) = self.s.get(self.i) {
                    self.i += 1;
                    match c {
                        b'"' => return Ok(Arg::Val(String::from_utf8_lossy(&out).into_owned())),
                        b'\\' => {
                            if let Some(&n) = self.s.get(self.i) {
                                out.push(n);
                                self.i += 1;
                            }
                        }
                        c => out.push(c),
                    }
                }
                Err(self.err())
            }
            Some(_) => {
                if matches!(op, "and" | "or" | "not") {
                    return Ok(Arg::F(self.expr()?));
                }
                let st = self.i;
                while let Some(&c) = self.s.get(self.i) {
                    if c == b',' || c == b')' {
                        break;
                    }
                    self.i += 1;
                }
                let tok = String::from_utf8_lossy(&self.s[st..self.i])
                    .trim()
                    .to_string();
                if tok.is_empty() {
                    return Err(self.err());
                }
                match tok.split_once('.') {
                    Some((c, p))
                        if c.chars().next().is_some_and(|ch| ch.is_ascii_alphabetic())
                            && c.chars().all(|ch| ch.is_ascii_alphanumeric())
                            && !p.is_empty()
                            && p.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') =>
                    {
                        Ok(Arg::Prop(c.to_string(), p.to_string()))
                    }
                    _ => Ok(Arg::Val(tok)),
                }
            }
            None => Err(self.err()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mit::Attrs;

    fn attrs(kv: &[(&str, &str)]) -> Attrs {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn filters() {
        let a = attrs(&[("name", "web-1"), ("descr", "x,y"), ("n", "10")]);
        let f = parse_filter(r#"and(eq(fvAEPg.name,"web-1"),not(eq(fvAEPg.descr,"z")))"#).unwrap();
        assert!(f.eval("fvAEPg", &a));
        assert!(!f.eval("fvBD", &a));
        let f = parse_filter(r#"or(wcard(fvAEPg.name,"^we"),eq(fvAEPg.name,"q"))"#).unwrap();
        assert!(f.eval("fvAEPg", &a));
        assert!(parse_filter(r#"ne(fvAEPg.name,"web-1")"#)
            .unwrap()
            .eval("fvAEPg", &attrs(&[("name", "x")])));
        assert!(parse_filter(r#"gt(fvAEPg.n,"9")"#)
            .unwrap()
            .eval("fvAEPg", &a));
        assert!(parse_filter(r#"bw(fvAEPg.n,"5","10")"#)
            .unwrap()
            .eval("fvAEPg", &a));
        assert!(parse_filter(r#"eq(fvAEPg.name,web-1)"#)
            .unwrap()
            .eval("fvAEPg", &a));
        assert!(parse_filter("eq(fvAEPg.name").is_err());
        assert!(parse_filter("foo(fvAEPg.name,\"x\")").is_err());
        assert!(parse_filter("and()").is_err());
        assert!(parse_filter(&"not(".repeat(100)).is_err());
    }

    #[test]
    fn wcard() {
        assert!(wildcard("eb", "web"));
        assert!(wildcard("^w.b$", "web"));
        assert!(!wildcard("^eb", "web"));
        assert!(wildcard("w.*1", "web-1"));
        assert!(wildcard("*", "anything"));
        assert!(!wildcard("a*a*a*a*a*a*a*a*b", &"a".repeat(200)));
        assert!(
            !wildcard(&"a".repeat(5000), &"a".repeat(5000)),
            "bounded, no deep recursion"
        );
    }
}
