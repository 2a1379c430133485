//! A map kept as a sorted vector: the small maps of the engine, the shell and the JavaScript
//! surface (open sockets, requests in flight, subscriptions by handle, subscriptions waiting for
//! a subscribe slot, the engine's timer indexes of `(time, handle)` keys) in place of `BTreeMap`s
//! and `BTreeSet`s (a set is a `VecMap<K, ()>`).
//!
//! Why: each `BTreeMap<K, V>` instantiates the B-tree code (search, insert, split, merge, iterate)
//! for its own key and value types, several kilobytes of wasm each; these maps hold a handful of
//! entries (or handles that only ever grow, so inserts append), where a vector is as fast and
//! its code is a fraction of the size. Inserting or removing in the middle moves the entries after
//! it: a few microseconds for the thousands of subscriptions an engine holds.

use std::ops::{Bound, RangeBounds};

#[derive(Debug)]
pub(crate) struct VecMap<K, V> {
    items: Vec<(K, V)>,
}

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        VecMap { items: Vec::new() }
    }
}

impl<K: Ord + Copy, V> VecMap<K, V> {
    pub(crate) fn new() -> Self {
        VecMap::default()
    }

    fn find(&self, k: &K) -> Result<usize, usize> {
        self.items.binary_search_by(|(x, _)| x.cmp(k))
    }

    /// Inserts or replaces; returns the replaced value.
    pub(crate) fn insert(&mut self, k: K, v: V) -> Option<V> {
        match self.find(&k) {
            Ok(i) => Some(std::mem::replace(&mut self.items[i].1, v)),
            Err(i) => {
                self.items.insert(i, (k, v));
                None
            }
        }
    }

    /// Removes an entry; gives memory back once a crowd of entries is gone.
    pub(crate) fn remove(&mut self, k: &K) -> Option<V> {
        let i = self.find(k).ok()?;
        let v = self.items.remove(i).1;
        if self.items.capacity() > 16 && self.items.len() < self.items.capacity() / 4 {
            self.items.shrink_to(self.items.len() * 2);
        }
        Some(v)
    }

    /// The allocated length (for leak checks).
    pub(crate) fn capacity(&self) -> usize {
        self.items.capacity()
    }

    pub(crate) fn get(&self, k: &K) -> Option<&V> {
        self.find(k).ok().map(|i| &self.items[i].1)
    }

    pub(crate) fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        self.find(k).ok().map(|i| &mut self.items[i].1)
    }

    pub(crate) fn contains_key(&self, k: &K) -> bool {
        self.find(k).is_ok()
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// In key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.items.iter().map(|(k, v)| (k, v))
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.items.iter().map(|(_, v)| v)
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &K> {
        self.items.iter().map(|(k, _)| k)
    }

    /// The smallest key.
    pub(crate) fn first_key(&self) -> Option<&K> {
        self.items.first().map(|(k, _)| k)
    }

    /// The keys within `r`, in order, from either end.
    pub(crate) fn range<R: RangeBounds<K>>(&self, r: R) -> impl DoubleEndedIterator<Item = &K> {
        let start = match r.start_bound() {
            Bound::Included(k) => self.items.partition_point(|(x, _)| x < k),
            Bound::Excluded(k) => self.items.partition_point(|(x, _)| x <= k),
            Bound::Unbounded => 0,
        };
        let end = match r.end_bound() {
            Bound::Included(k) => self.items.partition_point(|(x, _)| x <= k),
            Bound::Excluded(k) => self.items.partition_point(|(x, _)| x < k),
            Bound::Unbounded => self.items.len(),
        };
        self.items[start..end.max(start)].iter().map(|(k, _)| k)
    }

    /// Removes and returns the entry with the smallest key.
    pub(crate) fn pop_first(&mut self) -> Option<(K, V)> {
        if self.items.is_empty() {
            None
        } else {
            Some(self.items.remove(0))
        }
    }

    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.items.iter_mut().map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::VecMap;

    #[test]
    fn behaves_as_a_sorted_map() {
        let mut m = VecMap::new();
        for k in [5u64, 1, 9, 3] {
            assert_eq!(m.insert(k, k * 10), None);
        }
        assert_eq!(m.insert(3, 31), Some(30));
        assert_eq!(m.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [1, 3, 5, 9]);
        assert_eq!(m.remove(&5), Some(50));
        assert_eq!(m.remove(&5), None);
        assert_eq!(m.get(&3), Some(&31));
        *m.get_mut(&9).unwrap() += 1;
        assert_eq!(m.values().copied().collect::<Vec<_>>(), [10, 31, 91]);
        assert!(m.contains_key(&1) && !m.contains_key(&2));
        assert_eq!(m.len(), 3);
        for v in m.values_mut() {
            *v = 0;
        }
        assert!(m.values().all(|v| *v == 0));
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), [1, 3, 9]);
        assert_eq!(m.pop_first(), Some((1, 0)));
        assert_eq!(m.len(), 2);
        assert!(!m.is_empty());
    }

    #[test]
    fn ranges_and_first_key_match_a_btreeset() {
        let keys = [(5u64, 1u64), (1, 2), (9, 0), (3, 3), (5, 0), (7, 7)];
        let mut m = VecMap::new();
        let mut b = std::collections::BTreeSet::new();
        assert_eq!(m.first_key(), None);
        for k in keys {
            m.insert(k, ());
            b.insert(k);
        }
        assert_eq!(m.first_key(), b.first());
        let v = |i: &mut dyn Iterator<Item = &(u64, u64)>| i.copied().collect::<Vec<_>>();
        for lo in 0..11u64 {
            for hi in 0..11u64 {
                let (l, h) = ((lo, 0), (hi, 0));
                if l <= h {
                    assert_eq!(v(&mut m.range(l..h)), v(&mut b.range(l..h)));
                    assert_eq!(v(&mut m.range(l..=h)), v(&mut b.range(l..=h)));
                }
                assert_eq!(v(&mut m.range(..h).rev()), v(&mut b.range(..h).rev()));
                assert_eq!(v(&mut m.range(l..)), v(&mut b.range(l..)));
                let ex = (std::ops::Bound::Excluded(l), std::ops::Bound::Unbounded);
                assert_eq!(v(&mut m.range(ex)), v(&mut b.range(ex)));
            }
        }
    }

    #[test]
    fn gives_memory_back_when_most_entries_are_gone() {
        let mut m = VecMap::new();
        for k in 0..1000u32 {
            m.insert(k, ());
        }
        for k in 0..998u32 {
            m.remove(&k);
        }
        assert_eq!(m.len(), 2);
        assert!(m.capacity() <= 32, "capacity {}", m.capacity());
    }
}
