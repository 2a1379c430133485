//! A map kept as a sorted vector: the small maps of the engine, the shell and the JavaScript
//! surface (open sockets, requests in flight, subscriptions by handle, subscriptions waiting for
//! a subscribe slot) in place of `BTreeMap`s and `BTreeSet`s.
//!
//! Why: each `BTreeMap<K, V>` instantiates the B-tree code (search, insert, split, merge, iterate)
//! for its own key and value types, several kilobytes of wasm each; these maps hold a handful of
//! entries (or handles that only ever grow, so inserts append), where a vector is as fast and
//! its code is a fraction of the size.

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
