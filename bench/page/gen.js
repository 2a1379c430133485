// A seeded generator of realistic push frames (PROTOCOL.md §6): `created` objects carry about 25
// attributes, `modified` ones are sparse deltas with about 6, `deleted` ones the usual five.
// Deterministic for a seed, so every run (and every side of a comparison) sees the same bytes.

export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CLASSES = ["faultInst", "ethpmPhysIf", "fvAEPg", "fvCEp", "fvBD", "l1PhysIf"];
const WORDS = ["up", "down", "raised", "cleared", "minor", "major", "critical", "enabled",
  "disabled", "regular", "yes", "no", "unspecified", "default", "inherited", "none"];

function pick(r, a) {
  return a[Math.floor(r() * a.length)];
}

function dnOf(cls, i) {
  switch (cls) {
    case "faultInst": return `topology/pod-1/node-${101 + (i % 40)}/sys/phys-[eth1/${i % 48}]/fault-F${1000 + (i % 700)}`;
    case "ethpmPhysIf": return `topology/pod-1/node-${101 + (i % 40)}/sys/phys-[eth1/${i % 48}]/phys`;
    case "l1PhysIf": return `topology/pod-1/node-${101 + (i % 40)}/sys/phys-[eth1/${i % 48}]`;
    case "fvAEPg": return `uni/tn-t${i % 50}/ap-app${i % 7}/epg-e${i}`;
    case "fvBD": return `uni/tn-t${i % 50}/BD-bd${i}`;
    default: return `uni/tn-t${i % 50}/ap-app${i % 7}/epg-e${i % 300}/cep-00:50:56:${(i % 256).toString(16).padStart(2, "0")}:AA:${(i >> 8).toString(16).padStart(2, "0")}`;
  }
}

let ts = Date.UTC(2024, 0, 1);
function modTs() {
  ts += 7;
  return new Date(ts).toISOString().replace("Z", "+00:00");
}

/** One MO as [className, attributes] (status included). `pool` bounds the distinct DNs. */
export function genMo(r, pool) {
  const cls = pick(r, CLASSES);
  const i = Math.floor(r() * pool);
  const dn = dnOf(cls, i);
  const u = r();
  const a = { dn, rn: "", childAction: "", modTs: modTs() };
  if (u < 0.3) {
    a.status = "created";
    for (let k = 0; k < 20; k++) a[`${cls.slice(0, 4)}Prop${k}`] = k % 3 ? pick(r, WORDS) : String(Math.floor(r() * 100000));
    a.descr = `generated ${i}`;
  } else if (u < 0.92) {
    a.status = "modified";
    a.operSt = pick(r, WORDS);
    a.lastChange = modTs();
  } else {
    a.status = "deleted";
  }
  return [cls, a];
}

/** A JSON push frame: `{"subscriptionId":[ids],"imdata":[{cls:{attributes}}...]}`. */
export function jsonFrame(ids, mos) {
  return JSON.stringify({ subscriptionId: ids, imdata: mos.map(([c, a]) => ({ [c]: { attributes: a } })) });
}

function xmlEsc(s) {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/"/g, "&quot;");
}

/** An XML push frame: `<?xml ...?><imdata subscriptionId="a,b"><cls a="..."/></imdata>`. */
export function xmlFrame(ids, mos) {
  let s = `<?xml version="1.0" encoding="UTF-8"?><imdata subscriptionId="${ids.join(",")}">`;
  for (const [c, a] of mos) {
    s += `<${c}`;
    for (const k in a) s += ` ${k}="${xmlEsc(a[k])}"`;
    s += "/>";
  }
  return s + "</imdata>";
}

/**
 * The corpora. `ids` holds four subscription ids; each corpus is regenerated from the same seed
 * for each id set so the package and the plain-JS baseline see identical content.
 */
export const CORPORA = {
  "1 MO, 1 id": { frames: 20000, per: 1, nids: 1, xml: false },
  "1 MO, 4 ids": { frames: 10000, per: 1, nids: 4, xml: false },
  "500-MO bursts": { frames: 80, per: 500, nids: 1, xml: false },
  "XML, 5 MOs": { frames: 4000, per: 5, nids: 1, xml: true },
};

/** A frame with one new object whose delivery marks the end of a timed run. */
export function sentinelFrame(ids, n, xml) {
  const mo = ["fvTenant", { dn: `uni/tn-bench-sentinel-${n}`, status: "created", name: `bench-sentinel-${n}` }];
  return xml ? xmlFrame(ids, [mo]) : jsonFrame(ids, [mo]);
}

export function corpus(name, ids, seed = 7, pool = 2000) {
  const spec = CORPORA[name];
  const r = rng(seed);
  ts = Date.UTC(2024, 0, 1) + seed * 1e9;
  const out = [];
  for (let f = 0; f < spec.frames; f++) {
    const mos = [];
    for (let k = 0; k < spec.per; k++) mos.push(genMo(r, pool));
    const fid = ids.slice(0, spec.nids);
    out.push(spec.xml ? xmlFrame(fid, mos) : jsonFrame(fid, mos));
  }
  return out;
}

/**
 * An endpoint-like object (`fvCEp`, about 20 attributes) with a unique dn, mac and ip: what a
 * console holds by the hundred thousand. `i` makes it unique.
 */
export function endpoint(i) {
  const b = (n, k) => ((n >> (8 * k)) & 255).toString(16).padStart(2, "0").toUpperCase();
  const mac = `00:50:56:${b(i, 2)}:${b(i, 1)}:${b(i, 0)}`;
  const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  const tn = `t${i % 50}`;
  const a = {
    dn: `uni/tn-${tn}/ap-app${i % 7}/epg-e${i % 300}/cep-${mac}`,
    status: "created",
    childAction: "",
    rn: `cep-${mac}`,
    modTs: `2024-01-01T00:${String((i >> 6) % 60).padStart(2, "0")}:${String(i % 60).padStart(2, "0")}.000+00:00`,
    mac,
    ip,
    encap: `vlan-${100 + (i % 3000)}`,
    fabricPathDn: `topology/pod-1/paths-${101 + (i % 40)}/pathep-[eth1/${i % 48}]`,
    lcC: "learned",
    lcOwn: "local",
    name: mac,
    nameAlias: "",
    descr: "",
    id: "0",
    idepdn: "",
    annotation: "",
    extMngdBy: "",
    uid: "0",
    mcastAddr: "not-applicable",
    vmmSrc: "",
    contName: "",
    baseEpgDn: "",
  };
  return ["fvCEp", a];
}

export function burstFrame(ids, n, seed = 11) {
  const r = rng(seed);
  const mos = [];
  for (let k = 0; k < n; k++) mos.push(genMo(r, 5000));
  return jsonFrame(ids.slice(0, 1), mos);
}
