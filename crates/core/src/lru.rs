//! A small bounded cache, most recently used first, keyed by bytes (e.g. a schema's binary
//! content). Lookups compare a hash first, then the bytes. Linear: meant for tens of entries.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

pub struct Lru<T> {
    capacity: usize,
    entries: Vec<(u64, Box<[u8]>, Arc<T>)>,
}

fn hash(key: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

impl<T> Lru<T> {
    pub fn new(capacity: usize) -> Self {
        Lru {
            capacity: capacity.max(1),
            entries: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Changes the bound, dropping the least recently used entries beyond it.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
        self.entries.truncate(self.capacity);
    }

    /// The value for `key`, built by `make` on a miss (an Err from `make` is not cached).
    pub fn get_or_try_insert<E>(
        &mut self,
        key: &[u8],
        make: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, E> {
        // Fast path: the most recent entry (a CHECK validating many rows against one schema)
        // is recognised with one comparison, without hashing the key.
        if let Some((_, k, v)) = self.entries.first() {
            if **k == *key {
                return Ok(Arc::clone(v));
            }
        }
        let h = hash(key);
        if let Some(pos) = self
            .entries
            .iter()
            .position(|(eh, ek, _)| *eh == h && **ek == *key)
        {
            if pos != 0 {
                let e = self.entries.remove(pos);
                self.entries.insert(0, e);
            }
            return Ok(Arc::clone(&self.entries[0].2));
        }
        let v = Arc::new(make()?);
        self.entries.insert(0, (h, key.into(), Arc::clone(&v)));
        self.entries.truncate(self.capacity);
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_recent_first() {
        let mut c = Lru::new(2);
        let mut built = 0;
        for k in [b"a", b"b", b"a", b"c", b"a", b"b"] {
            c.get_or_try_insert::<()>(k, || {
                built += 1;
                Ok(k[0])
            })
            .expect("no error");
        }
        // a, b built; a hit; c built (evicts b); a hit; b built again.
        assert_eq!(built, 4);
        assert_eq!(c.len(), 2);
        let r: Result<_, &str> = c.get_or_try_insert(b"z", || Err("bad"));
        assert!(r.is_err());
        assert_eq!(c.len(), 2);
        c.set_capacity(1);
        assert_eq!(c.len(), 1);
    }
}
