//! The class catalogue: which classes a flavor knows, their RN formats and their default
//! properties (templates from `data/classes.json`, plus a few container classes defined here).

use std::collections::{BTreeMap, HashMap};

use crate::Flavor;

const CLASSES_JSON: &str = include_str!("../data/classes.json");

/// What the simulator knows about one class.
#[derive(Debug, Clone)]
pub struct ClassInfo {
    /// RN format, `{prop}` placeholders, e.g. `tn-{name}`, `phys-[{id}]`, `rsbd`.
    pub rn: String,
    /// Default properties (no `dn`, `rn`, `status`).
    pub template: BTreeMap<String, String>,
}

impl ClassInfo {
    /// The naming properties (placeholders of the RN format).
    pub fn naming(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = self.rn.as_str();
        while let Some(i) = rest.find('{') {
            let Some(j) = rest[i..].find('}') else { break };
            out.push(rest[i + 1..i + j].to_string());
            rest = &rest[i + j + 1..];
        }
        out
    }

    /// Build the RN from attributes; `None` when a naming property is missing.
    pub fn make_rn(&self, attrs: &BTreeMap<String, String>) -> Option<String> {
        let mut out = String::new();
        let mut rest = self.rn.as_str();
        while let Some(i) = rest.find('{') {
            let j = rest[i..].find('}')?;
            out.push_str(&rest[..i]);
            let key = &rest[i + 1..i + j];
            let v = attrs.get(key)?;
            if v.is_empty() {
                return None;
            }
            out.push_str(v);
            rest = &rest[i + j + 1..];
        }
        out.push_str(rest);
        Some(out)
    }

    /// Parse an RN of this class back into naming properties, if it matches.
    pub fn parse_rn(&self, rn: &str) -> Option<Vec<(String, String)>> {
        let fmt = self.rn.as_str();
        match fmt.find('{') {
            None => (fmt == rn).then(Vec::new),
            Some(i) => {
                let j = fmt.find('}')?;
                let prefix = &fmt[..i];
                let suffix = &fmt[j + 1..];
                if fmt[j + 1..].contains('{') {
                    return None;
                }
                if rn.len() >= prefix.len() + suffix.len()
                    && rn.starts_with(prefix)
                    && rn.ends_with(suffix)
                {
                    let v = &rn[prefix.len()..rn.len() - suffix.len()];
                    if v.is_empty() {
                        return None;
                    }
                    Some(vec![(fmt[i + 1..j].to_string(), v.to_string())])
                } else {
                    None
                }
            }
        }
    }
}

/// All classes of one flavor.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub classes: HashMap<String, ClassInfo>,
}

fn rn_for(flavor: Flavor, class: &str) -> Option<&'static str> {
    Some(match (flavor, class) {
        (Flavor::Apic, "fvTenant") => "tn-{name}",
        (Flavor::Apic, "fvCtx") => "ctx-{name}",
        (Flavor::Apic, "fvBD") => "BD-{name}",
        (Flavor::Apic, "fvSubnet") => "subnet-[{ip}]",
        (Flavor::Apic, "fvAp") => "ap-{name}",
        (Flavor::Apic, "fvAEPg") => "epg-{name}",
        (Flavor::Apic, "fvRsBd") => "rsbd",
        (Flavor::Apic, "fvRsCtx") => "rsctx",
        (Flavor::Apic, "vzBrCP") => "brc-{name}",
        (Flavor::Apic, "vzSubj") => "subj-{name}",
        (Flavor::Apic, "vzFilter") => "flt-{name}",
        (Flavor::Apic, "vzEntry") => "e-{name}",
        (_, "faultInst") => "fault-{code}",
        (_, "faultRecord") => "fr-{id}",
        (_, "topSystem") => "sys",
        (Flavor::Apic, "fabricNode") => "node-{id}",
        (_, "l1PhysIf") => "phys-[{id}]",
        (_, "ethpmPhysIf") => "phys",
        (Flavor::Apic, "fvCEp") => "cep-{name}",
        (Flavor::Apic, "aaaUser") => "user-{name}",
        (Flavor::Apic, "aaaActiveUserSession") => "actsession-{hashToken}",
        (Flavor::Nxos, "aaaUser") => "user-[{name}]",
        (Flavor::Nxos, "l2BD") => "bd-[{fabEncap}]",
        (Flavor::Nxos, "bgpInst") => "inst",
        (Flavor::Nxos, "bgpDom") => "dom-{name}",
        (Flavor::Nxos, "bgpPeer") => "peer-[{addr}]",
        (Flavor::Nxos, "bgpPeerEntry") => "ent-[{addr}]",
        (Flavor::Nxos, "interfaceEntity") => "intf",
        (Flavor::Nxos, "sysmgrShowVersion") => "showversion",
        (_, "lldpAdjEp") => "adj-{id}",
        _ => return None,
    })
}

/// Container and relation classes the catalogue does not describe, with small templates.
type Extra = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
);

fn extras(flavor: Flavor) -> Vec<Extra> {
    let common = vec![("childAction", ""), ("modTs", "never")];
    let mut v = vec![
        ("lldpEntity", "lldp", common.clone()),
        (
            "lldpInst",
            "inst",
            vec![
                ("adminSt", "enabled"),
                ("childAction", ""),
                ("holdTime", "120"),
                ("modTs", "never"),
            ],
        ),
        (
            "lldpIf",
            "if-[{id}]",
            vec![
                ("adminRxSt", "enabled"),
                ("adminTxSt", "enabled"),
                ("childAction", ""),
                ("id", ""),
                ("modTs", "never"),
            ],
        ),
        (
            "rmonEtherStats",
            "dbgEtherStats",
            vec![
                ("childAction", ""),
                ("clearTs", "never"),
                ("modTs", "never"),
                ("octets", "0"),
                ("pkts", "0"),
            ],
        ),
    ];
    match flavor {
        Flavor::Apic => v.extend([
            (
                "polUni",
                "uni",
                vec![
                    ("childAction", ""),
                    ("lcOwn", "local"),
                    ("modTs", "never"),
                    ("nameAlias", ""),
                    ("status", ""),
                ],
            ),
            (
                "fabricTopology",
                "topology",
                vec![
                    ("childAction", ""),
                    ("lcOwn", "local"),
                    ("modTs", "never"),
                    ("monPolDn", "uni/fabric/monfab-default"),
                ],
            ),
            (
                "fabricPod",
                "pod-{id}",
                vec![
                    ("childAction", ""),
                    ("id", "1"),
                    ("lcOwn", "local"),
                    ("modTs", "never"),
                    ("monPolDn", "uni/fabric/monfab-default"),
                    ("podType", "physical"),
                ],
            ),
            (
                "fvRsTenantMonPol",
                "rsTenantMonPol",
                vec![
                    ("annotation", ""),
                    ("childAction", ""),
                    ("extMngdBy", ""),
                    ("forceResolve", "yes"),
                    ("lcOwn", "local"),
                    ("modTs", "never"),
                    ("monPolDn", "uni/tn-common/monepg-default"),
                    ("rType", "mo"),
                    ("state", "formed"),
                    ("stateQual", "default-target"),
                    ("tCl", "monEPGPol"),
                    ("tContextDn", ""),
                    ("tDn", "uni/tn-common/monepg-default"),
                    ("tRn", "monepg-default"),
                    ("tType", "name"),
                    ("tnMonEPGPolName", ""),
                    ("uid", "0"),
                    ("userdom", "all"),
                ],
            ),
            (
                "aaaUserEp",
                "userext",
                vec![
                    ("childAction", ""),
                    ("descr", ""),
                    ("lcOwn", "local"),
                    ("modTs", "never"),
                    ("name", ""),
                    ("pwdStrengthCheck", "yes"),
                ],
            ),
            ("aaaUserSessionEp", "usersessext", common.clone()),
        ]),
        Flavor::Nxos => v.extend([
            (
                "bdEntity",
                "bd",
                vec![
                    ("childAction", ""),
                    ("descr", ""),
                    ("modTs", "never"),
                    ("persistentOnReload", "true"),
                    ("sysDefaultSVIAutostate", "enable"),
                ],
            ),
            (
                "bgpEntity",
                "bgp",
                vec![
                    ("adminSt", "enabled"),
                    ("childAction", ""),
                    ("modTs", "never"),
                    ("name", ""),
                    ("operErr", ""),
                    ("operSt", "enabled"),
                ],
            ),
            (
                "aaaUserEp",
                "userext",
                vec![
                    ("childAction", ""),
                    ("descr", ""),
                    ("modTs", "never"),
                    ("name", ""),
                    ("pwdMinLength", "8"),
                    ("pwdStrengthCheck", "yes"),
                ],
            ),
        ]),
    }
    v
}

impl Catalog {
    pub fn load(flavor: Flavor) -> Catalog {
        let mut classes = HashMap::new();
        let key = match flavor {
            Flavor::Apic => "apic",
            Flavor::Nxos => "nxos",
        };
        let parsed: serde_json::Value = serde_json::from_str(CLASSES_JSON).unwrap_or_default();
        if let Some(map) = parsed.get(key).and_then(|v| v.as_object()) {
            for (name, info) in map {
                let Some(rn) = rn_for(flavor, name) else {
                    continue;
                };
                let mut template = BTreeMap::new();
                if let Some(props) = info.get("properties").and_then(|p| p.as_object()) {
                    for (k, v) in props {
                        if matches!(k.as_str(), "dn" | "rn" | "status") {
                            continue;
                        }
                        if let Some(s) = v.as_str() {
                            template.insert(k.clone(), s.to_string());
                        }
                    }
                }
                classes.insert(
                    name.clone(),
                    ClassInfo {
                        rn: rn.to_string(),
                        template,
                    },
                );
            }
        }
        // NX-OS keeps faults too, under the faulted object.
        if flavor == Flavor::Nxos {
            if let Some(fi) = parsed.get("apic").and_then(|a| a.get("faultInst")) {
                let mut template = BTreeMap::new();
                if let Some(props) = fi.get("properties").and_then(|p| p.as_object()) {
                    for (k, v) in props {
                        if !matches!(k.as_str(), "dn" | "rn" | "status") {
                            if let Some(s) = v.as_str() {
                                template.insert(k.clone(), s.to_string());
                            }
                        }
                    }
                }
                classes.insert(
                    "faultInst".into(),
                    ClassInfo {
                        rn: "fault-{code}".into(),
                        template,
                    },
                );
            }
        }
        for (name, rn, props) in extras(flavor) {
            let template = props
                .into_iter()
                .filter(|(k, _)| *k != "status")
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            classes.insert(
                name.to_string(),
                ClassInfo {
                    rn: rn.to_string(),
                    template,
                },
            );
        }
        Catalog { classes }
    }

    pub fn get(&self, class: &str) -> Option<&ClassInfo> {
        self.classes.get(class)
    }

    pub fn knows(&self, class: &str) -> bool {
        self.classes.contains_key(class)
    }

    /// Guess the class of an RN (used for writes that give no class).
    pub fn class_of_rn(&self, rn: &str) -> Option<&str> {
        let mut best: Option<(&str, usize)> = None;
        for (name, info) in &self.classes {
            if info.parse_rn(rn).is_some() {
                let fixed = info.rn.len();
                if best.into_iter().all(|(_, l)| fixed > l) {
                    best = Some((name.as_str(), fixed));
                }
            }
        }
        best.map(|(n, _)| n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_both() {
        let a = Catalog::load(Flavor::Apic);
        assert!(a.knows("fvTenant") && a.knows("faultInst") && a.knows("polUni"));
        assert!(!a.knows("l2BD"));
        let n = Catalog::load(Flavor::Nxos);
        assert!(n.knows("l2BD") && n.knows("bgpPeerEntry") && !n.knows("fvTenant"));
        let t = a.get("fvTenant").unwrap();
        assert_eq!(t.naming(), vec!["name".to_string()]);
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_string(), "acme".to_string());
        assert_eq!(t.make_rn(&attrs).unwrap(), "tn-acme");
        let p = n.get("l1PhysIf").unwrap();
        assert_eq!(p.parse_rn("phys-[eth1/1]").unwrap()[0].1, "eth1/1");
        assert_eq!(a.class_of_rn("tn-x"), Some("fvTenant"));
        assert_eq!(a.class_of_rn("rsbd"), Some("fvRsBd"));
    }
}
