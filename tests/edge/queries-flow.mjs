// The queries-and-writes flow every runtime runs (Node, Deno, workerd): paging, lookups, nested
// children, a commit that creates, modifies and deletes a tenant while a store-mode subscription
// watches it, and a refusal. Plain ES module, no runtime APIs beyond fetch and timers; it throws
// on the first thing that is wrong and returns what it saw.
export async function queriesFlow({ Session, EventChannel, ClassQuery, DnQuery }, url) {
  const check = (cond, msg) => {
    if (!cond) throw new Error(`assertion failed: ${msg}`);
  };
  const waitFor = async (ms, what, f) => {
    for (let t = 0; !f(); t += 50) {
      if (t > ms) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const kids = Array.from({ length: 250 }, (_, i) => ({ fvCtx: { attributes: { name: `e${String(i).padStart(3, "0")}` } } }));
  const seeded = await fetch(`${url}/_sim/write?dn=uni/tn-edgeq`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ fvTenant: { attributes: { name: "edgeq" }, children: kids } }),
  });
  check(seeded.ok, `seeding answered ${seeded.status}`);

  const session = await Session.login({ url, user: "admin", password: "ins3965!", flavor: "apic" });
  const out = {};
  try {
    // Queries with no EventChannel open.
    const seen = new Set();
    let pages = 0;
    let total = 0;
    for await (const page of session.pages(new ClassQuery("fvCtx", { under: "uni/tn-edgeq" }), { pageSize: 100 })) {
      pages++;
      total = page.totalCount;
      for (const mo of page.mos) {
        check(!seen.has(mo.dn), `${mo.dn} twice`);
        seen.add(mo.dn);
      }
    }
    check(total === 250 && seen.size === 250 && pages === 3, `paged ${seen.size} of ${total} in ${pages}`);
    out.paged = seen.size;
    const t = await session.lookupByDn("uni/tn-edgeq", { rspSubtree: "children", rspSubtreeClass: "fvCtx" });
    check(t?.className === "fvTenant" && t.children.length === 250, "nested children");
    check((await session.lookupByDn("uni/tn-not-there")) === null, "null for nothing");
    const one = await session.lookupByClass("fvCtx", { filter: 'eq(fvCtx.name,"e042")' });
    check(one.length === 1 && one[0].dn === "uni/tn-edgeq/ctx-e042", "filter");
    // The device refuses more than 200 objects in one answer here (dme-sim --max-result 200).
    const tooBig = await session.query(new ClassQuery("fvCtx")).catch((e) => e);
    check(tooBig.code === "RESULT_TOO_BIG" && /pages/.test(tooBig.hint), `too big: ${tooBig.code}`);
    const answer = await session.query(new DnQuery("uni/tn-edgeq"));
    check(answer.totalCount === 1 && answer.mos.length === 1, "query answer");

    // A commit watched by a store-mode subscription.
    const seenPushes = [];
    const ec = new EventChannel(session);
    await ec.subscribe(new ClassQuery("fvTenant"), {
      store: true,
      onEvent: (mos) => seenPushes.push(...mos.map((m) => `${m.status}:${m.dn}:${m.attributes.descr ?? ""}`)),
    });
    const dn = "uni/tn-edgecommit";
    await session.commit({ className: "fvTenant", dn, attributes: { descr: "one" } });
    await waitFor(5000, "created", () => seenPushes.includes(`created:${dn}:one`));
    await session.commit([{ className: "fvTenant", dn, attributes: { descr: "two" }, status: "modified" }]);
    await waitFor(5000, "modified", () => seenPushes.includes(`modified:${dn}:two`));
    await session.commit({ className: "fvTenant", dn, status: "deleted" });
    await waitFor(5000, "deleted", () => seenPushes.some((p) => p.startsWith(`deleted:${dn}:`)));
    out.pushes = seenPushes.filter((p) => p.includes(dn)).length;

    // Refusals: typed, before anything is sent; a device refusal with its status and text.
    const code = (p) => p.then(() => "resolved", (e) => e.code);
    check((await code(session.commit({ className: "fvTenant" }))) === "INVALID_QUERY", "no dn");
    check((await code(session.commit({ className: "fvTenant", dn, attributes: { descr: 1 } }))) === "INVALID_QUERY", "non-string value");
    const err = await session.commit({ className: "fvBD", dn: "uni/tn-nowhere/BD-x" }).catch((e) => e);
    check(err.httpStatus === 400 && /does not exist/.test(err.deviceText), `device refusal ${err.code}`);
    await session.delete("uni/tn-edgeq");
    check((await session.lookupByDn("uni/tn-edgeq")) === null, "deleted");
    ec.close();
  } finally {
    await session.logout();
  }
  return out;
}
