// A live view of one store-mode subscription, for UI frameworks: immutable frozen snapshots that
// keep their identity until something changes, and change listeners called once per delivery.
//
// Fed by the hub with what the subscription delivers (full objects with their status, gaps,
// reconciliations). The objects are held in small buckets by a hash of the DN (about 32 objects
// each, or fewer); a snapshot shares every bucket with the previous one except those a delivery
// touched. So a changed object costs the copy of its bucket, and a new snapshot, made only when
// one is read after a change (at most once per frame for a UI), copies the table of buckets: one
// slot per 32 objects, never the objects. (Copying a Map costs about 0.3 µs per entry, which is
// why the buckets stay small.)

const MIN_BUCKETS = 16;
/** The table doubles when the buckets hold more than this many objects on average. */
const PER_BUCKET = 32;

/** FNV-1a over the DN's UTF-16 code units. */
function hash(dn) {
  let h = 0x811c9dc5;
  for (let i = 0; i < dn.length; i++) {
    h ^= dn.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Freezes an object the view owns (its seed, parsed for it alone), children included. */
function freezeOwn(mo) {
  Object.freeze(mo.attributes);
  if (mo.children) Object.freeze(mo.children).forEach(freezeOwn);
  return Object.freeze(mo);
}

/** A deep-frozen copy, so nothing a caller does to a delivered object reaches the view. */
function frozen(mo) {
  const copy = {
    className: mo.className,
    dn: mo.dn,
    status: mo.status,
    attributes: Object.freeze({ ...mo.attributes }),
  };
  if (mo.statusMissing) copy.statusMissing = true;
  if (mo.children) copy.children = Object.freeze(mo.children.map(frozen));
  return Object.freeze(copy);
}

/** One immutable state of the view: `get(dn)`, `has(dn)`, `size`, `list`, iteration, and the
 * gap in progress (`gap`, a reason, or `null`). */
export class StoreSnapshot {
  #buckets;
  #list = null;

  constructor(buckets, size, version, gap, reconciled) {
    this.#buckets = buckets;
    this.size = size;
    this.version = version;
    this.gap = gap;
    this.reconciled = reconciled;
    Object.freeze(this);
  }

  get(dn) {
    const b = this.#buckets;
    return b[hash(dn) & (b.length - 1)].get(dn);
  }

  has(dn) {
    return this.get(dn) !== undefined;
  }

  /** Every object, as a frozen array in no particular order; built on first use. */
  get list() {
    if (this.#list === null) {
      const out = [];
      for (const b of this.#buckets) for (const mo of b.values()) out.push(mo);
      this.#list = Object.freeze(out);
    }
    return this.#list;
  }

  [Symbol.iterator]() {
    return this.list[Symbol.iterator]();
  }
}

export class View {
  #buckets;
  /** Which buckets are this view's own (1) rather than shared with the last snapshot (0). */
  #owned;
  #size = 0;
  #version = 0;
  #gap = null;
  #reconciled = null;
  #current = null;
  #listeners = new Set();
  #notifyQueued = false;

  constructor(initial) {
    this.#rehash(MIN_BUCKETS, []);
    this.#add(initial, freezeOwn);
    // Arrow properties: they work unbound, as `useSyncExternalStore(sub.onChange, sub.snapshot)`
    // passes them.
    this.snapshot = () => this.#current ?? this.#publish();
    this.onChange = (listener) => {
      if (typeof listener !== "function") throw new TypeError("onChange takes a function");
      // A wrapper per call, so the same function added twice is two subscriptions.
      const entry = { listener };
      this.#listeners.add(entry);
      return () => this.#listeners.delete(entry);
    };
    this.subscribe = (run) => {
      if (typeof run !== "function") throw new TypeError("subscribe takes a function");
      run(this.snapshot());
      return this.onChange(() => run(this.snapshot()));
    };
  }

  /** Objects delivered by the subscription (store mode: full objects, `deleted` removes). */
  apply(mos) {
    this.#add(mos, frozen);
    this.#changed();
  }

  /** A gap: the view keeps what it holds until the reconciliation. */
  gap(reason) {
    this.#gap = reason;
    this.#changed();
  }

  /** The reconciliation after a gap is complete (its differences were applied). */
  reconciled(differences) {
    this.#gap = null;
    this.#reconciled = differences;
    this.#changed();
  }

  #add(mos, freeze) {
    for (const mo of mos) {
      if (mo.status === "deleted") {
        const b = this.#writable(mo.dn);
        if (b.delete(mo.dn)) this.#size--;
      } else {
        const b = this.#writable(mo.dn);
        const had = b.has(mo.dn);
        b.set(mo.dn, freeze(mo));
        if (!had && ++this.#size > PER_BUCKET * this.#buckets.length) {
          this.#rehash(this.#buckets.length * 2, this.#buckets);
        }
      }
    }
  }

  /** The bucket of `dn`, copied first if the last snapshot shares it. */
  #writable(dn) {
    const i = hash(dn) & (this.#buckets.length - 1);
    if (!this.#owned[i]) {
      this.#buckets[i] = new Map(this.#buckets[i]);
      this.#owned[i] = 1;
    }
    return this.#buckets[i];
  }

  #rehash(n, old) {
    const buckets = Array.from({ length: n }, () => new Map());
    for (const b of old) for (const [dn, mo] of b) buckets[hash(dn) & (n - 1)].set(dn, mo);
    this.#buckets = buckets;
    this.#owned = new Uint8Array(n).fill(1);
  }

  #publish() {
    this.#owned.fill(0);
    this.#current = new StoreSnapshot(
      this.#buckets.slice(), this.#size, this.#version, this.#gap, this.#reconciled);
    return this.#current;
  }

  #changed() {
    this.#version++;
    this.#current = null;
    if (this.#notifyQueued) return;
    this.#notifyQueued = true;
    // After the delivery, never inside it: a listener may read the view, subscribe, close...
    queueMicrotask(() => {
      this.#notifyQueued = false;
      for (const { listener } of [...this.#listeners]) {
        try {
          listener();
        } catch (err) {
          reportError(err);
        }
      }
    });
  }
}

/** A listener's exception goes where uncaught exceptions go, without stopping the others. */
function reportError(err) {
  setTimeout(() => {
    throw err;
  }, 0);
}
