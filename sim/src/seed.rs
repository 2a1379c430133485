//! The seeded fabric: a realistic tree per flavor, deterministic for a seed, sized to
//! `SimConfig::objects`.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::catalog::Catalog;
use crate::mit::{Attrs, Mit, Mo, ModClock};
use crate::util::{iso_ms, now_ms};
use crate::{Flavor, SimConfig};

pub const TENANT_NAMES: &[&str] = &[
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark",
    "wayne",
    "tyrell",
    "cyberdyne",
    "wonka",
    "soylent",
    "aperture",
    "oscorp",
    "vandelay",
    "dunder",
    "pied-piper",
    "massive",
    "gringotts",
    "nakatomi",
    "monarch",
];
pub const APP_NAMES: &[&str] = &[
    "web", "app", "db", "cache", "auth", "billing", "search", "mq", "batch", "api",
];

pub struct Seeder<'a> {
    pub mit: Mit,
    pub cat: &'a Catalog,
    pub rng: StdRng,
    base_ms: i64,
}

impl<'a> Seeder<'a> {
    pub fn add(&mut self, dn: &str, class: &str, over: &[(&str, &str)]) {
        let mut attrs: Attrs = self
            .cat
            .get(class)
            .map(|c| c.template.clone())
            .unwrap_or_default();
        for (k, v) in over {
            attrs.insert(k.to_string(), v.to_string());
        }
        attrs.insert("childAction".into(), String::new());
        if attrs.get("modTs").map(String::as_str) != Some("never") {
            let back = self.rng.random_range(0..30 * 86_400_000i64);
            attrs.insert("modTs".into(), iso_ms(self.base_ms - back));
        }
        self.mit.put(
            dn.to_string(),
            Mo {
                class: class.to_string(),
                attrs,
            },
        );
    }

    fn ts_ago(&mut self) -> String {
        let back = self.rng.random_range(0..30 * 86_400_000i64);
        iso_ms(self.base_ms - back)
    }
}

/// Build the tree for a configuration.
pub fn build(cfg: &SimConfig, cat: &Catalog) -> (Mit, ModClock) {
    let mut s = Seeder {
        mit: Mit::default(),
        cat,
        rng: StdRng::seed_from_u64(cfg.seed),
        base_ms: now_ms(),
    };
    let target = cfg.objects.clamp(50, 2_000_000);
    match cfg.flavor {
        Flavor::Apic => apic(&mut s, target),
        Flavor::Nxos => nxos(&mut s, target),
    }
    (s.mit, ModClock::default())
}

fn mac(rng: &mut StdRng) -> String {
    let b: [u8; 3] = rng.random();
    format!("00:50:56:{:02X}:{:02X}:{:02X}", b[0], b[1], b[2])
}

#[allow(clippy::too_many_arguments)]
pub fn fault_attrs(
    code: &str,
    cause: &str,
    descr: &str,
    rule: &str,
    sev: &str,
    subject: &str,
    lc: &str,
    ts: &str,
) -> Vec<(String, String)> {
    let v = [
        ("ack", "no"),
        ("cause", cause),
        ("changeSet", ""),
        ("code", code),
        ("created", ts),
        ("delegated", "no"),
        ("descr", descr),
        ("domain", "infra"),
        ("highestSeverity", sev),
        ("lastTransition", ts),
        ("lc", lc),
        ("occur", "1"),
        ("origSeverity", sev),
        ("prevSeverity", sev),
        ("rule", rule),
        ("severity", sev),
        ("subject", subject),
        ("type", "operational"),
    ];
    v.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn add_fault(
    s: &mut Seeder,
    parent: &str,
    code: &str,
    cause: &str,
    descr: &str,
    rule: &str,
    sev: &str,
    subject: &str,
) {
    let ts = s.ts_ago();
    let a = fault_attrs(code, cause, descr, rule, sev, subject, "raised", &ts);
    let refs: Vec<(&str, &str)> = a.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    s.add(&format!("{parent}/fault-{code}"), "faultInst", &refs);
}

/// Ports of a switch: `l1PhysIf` + `ethpmPhysIf` (+ a fault for down ports).
pub fn add_port(s: &mut Seeder, sys: &str, id: &str, up: bool, flavor: Flavor) {
    let dn = if sys.is_empty() {
        format!("phys-[{id}]")
    } else {
        format!("{sys}/phys-[{id}]")
    };
    let descr = if up && s.rng.random_bool(0.5) {
        format!("to-server-{}", s.rng.random_range(1..400))
    } else {
        String::new()
    };
    match flavor {
        Flavor::Apic => s.add(
            &dn,
            "l1PhysIf",
            &[
                ("id", id),
                ("descr", &descr),
                ("portT", "leaf"),
                ("layer", "Layer2"),
                ("usage", "epg"),
            ],
        ),
        Flavor::Nxos => s.add(&dn, "l1PhysIf", &[("id", id), ("descr", &descr)]),
    }
    let last = s.ts_ago();
    let monpol = if flavor == Flavor::Apic {
        "uni/infra/moninfra-default"
    } else {
        ""
    };
    s.add(
        &format!("{dn}/phys"),
        "ethpmPhysIf",
        &[
            ("operSt", if up { "up" } else { "down" }),
            ("operStQual", if up { "none" } else { "link-failure" }),
            ("operSpeed", if up { "10G" } else { "inherit" }),
            ("lastLinkStChg", &last),
            ("monPolDn", monpol),
        ],
    );
    if !up && flavor == Flavor::Apic {
        let descr = format!("Port is down, reason:linkFailure, used by:EPG, lastLinkStChg:{last}, operStQual:link-failure");
        add_fault(
            s,
            &dn,
            "F1678",
            "interface-physical-down",
            &descr,
            "ethpm-if-port-down-infra-epg",
            "minor",
            "port-down",
        );
    }
}

fn apic(s: &mut Seeder, target: usize) {
    s.add("uni", "polUni", &[]);
    s.add("uni/userext", "aaaUserEp", &[]);
    s.add("uni/userext/user-admin", "aaaUser", &[("name", "admin")]);
    s.add("uni/usersessext", "aaaUserSessionEp", &[]);
    s.add("topology", "fabricTopology", &[]);
    s.add("topology/pod-1", "fabricPod", &[("id", "1")]);
    let node = |s: &mut Seeder, id: u32, role: &str, name: &str, model: &str| {
        let dn = format!("topology/pod-1/node-{id}");
        let serial = format!("FDO{:08}", s.rng.random_range(10_000_000..99_999_999u32));
        let ids = id.to_string();
        let addr = format!("10.0.{}.{}", id / 256, id % 256);
        s.add(
            &dn,
            "fabricNode",
            &[
                ("id", &ids),
                ("role", role),
                ("name", name),
                ("model", model),
                ("serial", &serial),
                ("address", &addr),
                ("version", "n9000-15.2(1g)"),
            ],
        );
        s.add(
            &format!("{dn}/sys"),
            "topSystem",
            &[
                ("id", &ids),
                ("role", role),
                ("name", name),
                ("serial", &serial),
                ("address", &addr),
                ("podId", "1"),
                ("version", "5.2(1g)"),
            ],
        );
        dn
    };
    for i in 1..=3 {
        node(s, i, "controller", &format!("apic{i}"), "APIC-SERVER-M3");
    }
    for i in 0..2 {
        let dn = node(
            s,
            201 + i,
            "spine",
            &format!("spine{}", 201 + i),
            "N9K-C9336PQ",
        );
        for p in 1..=8 {
            add_port(
                s,
                &format!("{dn}/sys"),
                &format!("eth1/{p}"),
                true,
                Flavor::Apic,
            );
        }
    }
    let mut leaves = 0u32;
    let mut tenants = 0usize;
    for t in ["common", "infra", "mgmt"] {
        tenant(s, t, 1);
    }
    while s.mit.len() < target {
        if leaves < 400 {
            let id = 101 + leaves;
            leaves += 1;
            let dn = node(s, id, "leaf", &format!("leaf{id}"), "N9K-C93180YC-EX");
            for p in 1..=48 {
                let up = p <= 40 || s.rng.random_bool(0.3);
                add_port(
                    s,
                    &format!("{dn}/sys"),
                    &format!("eth1/{p}"),
                    up,
                    Flavor::Apic,
                );
            }
        }
        for _ in 0..2 {
            if s.mit.len() >= target && tenants > 0 {
                break;
            }
            let base = TENANT_NAMES[tenants % TENANT_NAMES.len()];
            let name = if tenants < TENANT_NAMES.len() {
                base.to_string()
            } else {
                format!("{base}-{}", tenants / TENANT_NAMES.len())
            };
            tenants += 1;
            tenant(s, &name, 2);
        }
    }
}

fn tenant(s: &mut Seeder, name: &str, size: usize) {
    let t = format!("uni/tn-{name}");
    s.add(&t, "fvTenant", &[("name", name), ("uid", "15374")]);
    s.add(&format!("{t}/rsTenantMonPol"), "fvRsTenantMonPol", &[]);
    let vrfs = ["prod", "dev"];
    for (i, v) in vrfs.iter().take(size).enumerate() {
        let seg = (2_195_456 + i * 32_768 + s.rng.random_range(0..1000) * 4096).to_string();
        s.add(
            &format!("{t}/ctx-{v}"),
            "fvCtx",
            &[
                ("name", v),
                ("scope", &seg),
                ("seg", &seg),
                ("pcTag", "16386"),
            ],
        );
    }
    if size == 1 {
        s.add(&format!("{t}/ctx-default"), "fvCtx", &[("name", "default")]);
        s.add(
            &format!("{t}/BD-default"),
            "fvBD",
            &[("name", "default"), ("uid", "0")],
        );
        s.add(
            &format!("{t}/BD-default/rsctx"),
            "fvRsCtx",
            &[
                ("tnFvCtxName", "default"),
                ("tDn", &format!("{t}/ctx-default")),
                ("tRn", "ctx-default"),
            ],
        );
        return;
    }
    let mut bds = Vec::new();
    for b in 0..(2 * size) {
        let bd = format!("bd-{}", 10 + b * 10);
        let vrf = vrfs[b % vrfs.len()];
        let bdn = format!("{t}/BD-{bd}");
        let m = mac(&mut s.rng);
        s.add(
            &bdn,
            "fvBD",
            &[("name", &bd), ("mac", &m), ("uid", "15374")],
        );
        s.add(
            &format!("{bdn}/rsctx"),
            "fvRsCtx",
            &[
                ("tnFvCtxName", vrf),
                ("tDn", &format!("{t}/ctx-{vrf}")),
                ("tRn", &format!("ctx-{vrf}")),
            ],
        );
        let ip = format!("10.{}.{}.1/24", s.rng.random_range(1..250), 10 + b * 10);
        s.add(
            &format!("{bdn}/subnet-[{ip}]"),
            "fvSubnet",
            &[("ip", &ip), ("name", ""), ("uid", "15374")],
        );
        bds.push(bd);
    }
    for a in 0..size {
        let ap = format!("{t}/ap-{}", ["shop", "crm", "erp"][a % 3]);
        s.add(
            &ap,
            "fvAp",
            &[
                ("name", ap.rsplit("ap-").next().unwrap_or("ap")),
                ("uid", "15374"),
            ],
        );
        for e in 0..3 {
            let ename = APP_NAMES[(a * 3 + e) % APP_NAMES.len()];
            let epg = format!("{ap}/epg-{ename}");
            let pctag = s.rng.random_range(16_386..65_000).to_string();
            s.add(
                &epg,
                "fvAEPg",
                &[("name", ename), ("pcTag", &pctag), ("uid", "15374")],
            );
            let bd = &bds[(a * 3 + e) % bds.len()];
            s.add(
                &format!("{epg}/rsbd"),
                "fvRsBd",
                &[
                    ("tnFvBDName", bd),
                    ("tDn", &format!("{t}/BD-{bd}")),
                    ("tRn", &format!("BD-{bd}")),
                ],
            );
            for _ in 0..2 {
                let m = mac(&mut s.rng);
                let ip = format!(
                    "10.{}.{}.{}",
                    s.rng.random_range(1..250),
                    s.rng.random_range(0..250),
                    s.rng.random_range(2..250)
                );
                let encap = format!("vlan-{}", s.rng.random_range(100..4000));
                s.add(
                    &format!("{epg}/cep-{m}"),
                    "fvCEp",
                    &[("name", &m), ("mac", &m), ("ip", &ip), ("encap", &encap)],
                );
            }
            if s.rng.random_bool(0.15) {
                let descr = format!(
                    "Configuration failed for {epg} due to Not Associated With Management Zone"
                );
                add_fault(
                    s,
                    &epg,
                    "F0467",
                    "configuration-failed",
                    &descr,
                    "fv-nw-issues-config-failed",
                    "minor",
                    "management",
                );
            }
        }
    }
    for c in 0..size {
        let cname = ["web-to-app", "app-to-db"][c % 2];
        let brc = format!("{t}/brc-{cname}");
        s.add(
            &brc,
            "vzBrCP",
            &[("name", cname), ("scope", "context"), ("uid", "15374")],
        );
        s.add(&format!("{brc}/subj-{cname}"), "vzSubj", &[("name", cname)]);
        let fname = ["http", "sql"][c % 2];
        let flt = format!("{t}/flt-{fname}");
        s.add(&flt, "vzFilter", &[("name", fname)]);
        let (port, prot) = if fname == "http" {
            ("http", "tcp")
        } else {
            ("1433", "tcp")
        };
        s.add(
            &format!("{flt}/e-{fname}"),
            "vzEntry",
            &[
                ("name", fname),
                ("dFromPort", port),
                ("dToPort", port),
                ("prot", prot),
                ("etherT", "ip"),
            ],
        );
    }
}

fn nxos(s: &mut Seeder, target: usize) {
    s.add("sys", "topSystem", &[]);
    s.add("sys/showversion", "sysmgrShowVersion", &[]);
    s.add("sys/intf", "interfaceEntity", &[]);
    s.add("sys/bd", "bdEntity", &[]);
    s.add("sys/userext", "aaaUserEp", &[]);
    s.add("sys/userext/user-[admin]", "aaaUser", &[("name", "admin")]);
    s.add("sys/lldp", "lldpEntity", &[]);
    s.add("sys/lldp/inst", "lldpInst", &[]);
    s.add("sys/bgp", "bgpEntity", &[]);
    s.add("sys/bgp/inst", "bgpInst", &[("asn", "65001")]);
    let mut modules = 0u32;
    let mut vlans = 0u32;
    let mut doms = 0u32;
    let add_dom = |s: &mut Seeder, name: &str, peers: u32, idx: u32| {
        let dom = format!("sys/bgp/inst/dom-{name}");
        let rid = format!("192.168.{}.1", idx % 250);
        let peers_s = peers.to_string();
        s.add(
            &dom,
            "bgpDom",
            &[
                ("name", name),
                ("rtrId", &rid),
                ("operRtrId", &rid),
                ("numPeers", &peers_s),
                ("numEstPeers", &peers_s),
            ],
        );
        for p in 0..peers {
            let addr = format!("172.{}.{}.{}", 16 + idx % 16, p / 250, 1 + p % 250);
            let peer = format!("{dom}/peer-[{addr}]");
            let asn = (65_100 + p).to_string();
            s.add(
                &peer,
                "bgpPeer",
                &[
                    ("addr", &addr),
                    ("asn", &asn),
                    ("name", &format!("peer-{p}")),
                ],
            );
            let flap = s.ts_ago();
            s.add(
                &format!("{peer}/ent-[{addr}]"),
                "bgpPeerEntry",
                &[
                    ("addr", &addr),
                    ("operSt", "established"),
                    ("prevOperSt", "openconfirm"),
                    ("lastFlapTs", &flap),
                ],
            );
        }
    };
    add_dom(s, "default", 4, 0);
    doms += 1;
    while s.mit.len() < target {
        if modules < 32 {
            modules += 1;
            for p in 1..=48 {
                let id = format!("eth{modules}/{p}");
                let up = p <= 36 || s.rng.random_bool(0.3);
                add_port(s, "sys/intf", &id, up, Flavor::Nxos);
                if up && p % 4 == 1 {
                    let lif = format!("sys/lldp/inst/if-[{id}]");
                    s.add(&lif, "lldpIf", &[("id", &id)]);
                    let sys_name = format!("server-{}", s.rng.random_range(1..500));
                    s.add(
                        &format!("{lif}/adj-1"),
                        "lldpAdjEp",
                        &[("id", "1"), ("sysName", &sys_name), ("portIdV", "eth0")],
                    );
                }
            }
        }
        let batch = if modules < 32 { 20 } else { 200 };
        for _ in 0..batch {
            if vlans >= 3960 {
                break;
            }
            let v = if vlans == 0 { 1 } else { 9 + vlans };
            vlans += 1;
            let enc = format!("vlan-{v}");
            let name = if v == 1 {
                "default".to_string()
            } else {
                format!("VLAN{v:04}")
            };
            s.add(
                &format!("sys/bd/bd-[{enc}]"),
                "l2BD",
                &[("fabEncap", &enc), ("name", &name), ("id", &v.to_string())],
            );
        }
        if modules >= 32 && vlans >= 3960 {
            let name = format!("vrf-{doms}");
            add_dom(s, &name, 16, doms);
            doms += 1;
        }
    }
}
