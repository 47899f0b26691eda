//! The one cache type of the extension's per-backend caches (trigger plans, capture
//! configuration, context ids, compiled JSON Schemas, ...): a map whose entries belong to one
//! *generation* of an invalidation counter, bounded, least recently used out first.
//!
//! - Every lookup names the generation it is made under (the extension's invalidation epoch, an
//!   abort count, a transaction id, ...): when it is not the one the entries were made under,
//!   they are all dropped first. A value is therefore never served under a later generation than
//!   the one it was made in.
//! - A miss makes the value with the cache *not* borrowed: making it may look up this very cache
//!   again (a nested trigger call), or fail (an error unwinds through it, nothing is cached).
//! - The entry hit or made last is checked before anything is hashed: most statements fire one
//!   trigger and a CHECK validates every row against one schema, so the common lookup costs one
//!   comparison of the key.
//! - Values leave the cache (replaced, evicted, or dropped with their generation) after its borrow
//!   ends, so a value whose `Drop` frees something may look the cache up again.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::Hash;

/// No entry: [`State::last`] points nowhere.
const NONE: usize = usize::MAX;

pub struct Cache<K, V> {
    state: RefCell<State<K, V>>,
}

struct Slot<K, V> {
    key: K,
    value: V,
    /// The clock at the last use: the smallest is evicted first.
    used: u64,
}

struct State<K, V> {
    generation: u64,
    bound: usize,
    slots: Vec<Slot<K, V>>,
    /// Slots by key (made at the first insert: an empty cache is a constant, so a thread-local
    /// one needs no lazy initialisation, checked at every access).
    index: Option<HashMap<K, usize>>,
    /// The slot hit or made last ([`NONE`] when there is none).
    last: usize,
    clock: u64,
}

impl<K: Eq + Hash + Clone, V: Clone> Cache<K, V> {
    /// An empty cache of at most `bound` entries (`usize::MAX`: no bound; 0: keeps nothing).
    pub const fn new(bound: usize) -> Self {
        Cache {
            state: RefCell::new(State {
                generation: 0,
                bound,
                slots: Vec::new(),
                index: None,
                last: NONE,
                clock: 0,
            }),
        }
    }

    pub fn len(&self) -> usize {
        self.state.borrow().slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Changes the bound, evicting the least recently used entries beyond it.
    pub fn set_bound(&self, bound: usize) {
        let mut gone = Vec::new();
        {
            let mut s = self.state.borrow_mut();
            if s.bound == bound {
                return;
            }
            s.bound = bound;
            s.shrink_to(bound, &mut gone);
        }
        drop(gone);
    }

    /// The value of `key` made under `generation`: cached, or made by `make` and cached.
    pub fn get_or_insert_with<Q>(&self, generation: u64, key: &Q, make: impl FnOnce() -> V) -> V
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        match self.get_or_try_insert_with(generation, key, || {
            Ok::<V, std::convert::Infallible>(make())
        }) {
            Ok(v) => v,
            Err(never) => match never {},
        }
    }

    /// As [`Cache::get_or_insert_with`]; an `Err` of `make` is returned and nothing is cached.
    pub fn get_or_try_insert_with<Q, E>(
        &self,
        generation: u64,
        key: &Q,
        make: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        // a hit, the per-row path: one comparison of the generation and (mostly) one of the key
        let hit = {
            let mut s = self.state.borrow_mut();
            if s.generation == generation {
                s.get(key)
            } else {
                None
            }
        };
        if let Some(v) = hit {
            return Ok(v);
        }
        let mut gone = Vec::new();
        self.state.borrow_mut().renew(generation, &mut gone);
        drop(gone);
        let value = make()?;
        let mut gone = Vec::new();
        {
            let mut s = self.state.borrow_mut();
            // made under `generation`: entries made meanwhile under another one go
            s.renew(generation, &mut gone);
            s.insert(key.to_owned(), value.clone(), &mut gone);
        }
        drop(gone);
        Ok(value)
    }
}

impl<K: Eq + Hash + Clone, V> State<K, V> {
    /// Moves every entry out to `gone` when `generation` is not the entries' own.
    fn renew(&mut self, generation: u64, gone: &mut Vec<Slot<K, V>>) {
        if self.generation != generation {
            self.generation = generation;
            self.index = None;
            gone.append(&mut self.slots);
            self.last = NONE;
        }
    }

    fn get<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        if let Some(slot) = self.slots.get(self.last) {
            if slot.key.borrow() == key {
                // the most recently used already: nothing to update
                return Some(slot.value.clone());
            }
        }
        let i = *self.index.as_ref()?.get(key)?;
        self.clock += 1;
        self.last = i;
        let slot = &mut self.slots[i];
        slot.used = self.clock;
        Some(slot.value.clone())
    }

    fn insert(&mut self, key: K, value: V, gone: &mut Vec<Slot<K, V>>) {
        self.clock += 1;
        let used = self.clock;
        if let Some(&i) = self.index.as_ref().and_then(|index| index.get(&key)) {
            // made meanwhile by a nested call: this one replaces it
            let old = std::mem::replace(&mut self.slots[i], Slot { key, value, used });
            gone.push(old);
            self.last = i;
            return;
        }
        if self.bound == 0 {
            gone.push(Slot { key, value, used });
            return;
        }
        self.shrink_to(self.bound - 1, gone);
        let at = self.slots.len();
        self.index
            .get_or_insert_with(HashMap::new)
            .insert(key.clone(), at);
        self.last = self.slots.len();
        self.slots.push(Slot { key, value, used });
    }

    /// Evicts the least recently used entries until at most `len` are left.
    fn shrink_to(&mut self, len: usize, gone: &mut Vec<Slot<K, V>>) {
        while self.slots.len() > len {
            let Some(oldest) = (0..self.slots.len()).min_by_key(|&i| self.slots[i].used) else {
                return;
            };
            let slot = self.slots.swap_remove(oldest);
            if let Some(index) = self.index.as_mut() {
                index.remove(&slot.key);
                if let Some(moved) = self.slots.get(oldest) {
                    if let Some(i) = index.get_mut(&moved.key) {
                        *i = oldest;
                    }
                }
            }
            self.last = NONE;
            gone.push(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    fn get(c: &Cache<u32, u32>, generation: u64, key: u32, made: &Cell<u32>) -> u32 {
        c.get_or_insert_with(generation, &key, || {
            made.set(made.get() + 1);
            key * 10 + made.get()
        })
    }

    #[test]
    fn cached_until_the_generation_moves() {
        let c = Cache::new(usize::MAX);
        let made = Cell::new(0);
        assert_eq!(get(&c, 1, 7, &made), 71);
        assert_eq!(get(&c, 1, 7, &made), 71);
        assert_eq!(get(&c, 1, 8, &made), 82);
        assert_eq!(get(&c, 1, 7, &made), 71);
        assert_eq!(made.get(), 2);
        // a new generation drops every entry
        assert_eq!(get(&c, 2, 8, &made), 83);
        assert_eq!(c.len(), 1);
        assert_eq!(get(&c, 2, 7, &made), 74);
    }

    #[test]
    fn bounded_least_recently_used_out_first() {
        let c = Cache::new(2);
        let made = Cell::new(0);
        for k in [1, 2, 1, 3, 1, 2] {
            get(&c, 0, k, &made);
        }
        // 1, 2 made; 1 hit; 3 made (evicts 2, the least recent); 1 hit; 2 made again (evicts 3)
        assert_eq!(made.get(), 4);
        assert_eq!(c.len(), 2);
        get(&c, 0, 1, &made);
        assert_eq!(made.get(), 4);
        c.set_bound(1);
        assert_eq!(c.len(), 1);
        get(&c, 0, 1, &made);
        assert_eq!(made.get(), 4, "1 was the most recent: it stays");
        c.set_bound(0);
        get(&c, 0, 1, &made);
        get(&c, 0, 1, &made);
        assert_eq!((made.get(), c.len()), (6, 0), "bound 0 keeps nothing");
    }

    #[test]
    fn the_last_hit_stays_the_most_recent() {
        let c = Cache::new(2);
        let made = Cell::new(0);
        // 1 and 2 made; 1 hit twice (the second time as the last hit, without updating); 3 made:
        // 2 is the least recently used and goes
        for k in [1, 2, 1, 1, 3, 1] {
            get(&c, 0, k, &made);
        }
        assert_eq!(made.get(), 3);
        get(&c, 0, 2, &made);
        assert_eq!(made.get(), 4, "2 was evicted");
    }

    #[test]
    fn eviction_keeps_the_index_right() {
        let c = Cache::new(3);
        let made = Cell::new(0);
        for round in 0..50u32 {
            let k = (round * 7) % 5;
            let v = c.get_or_insert_with(0, &k, || {
                made.set(made.get() + 1);
                k
            });
            assert_eq!(v, k, "round {round}: the value of another key");
            assert!(c.len() <= 3);
        }
    }

    #[test]
    fn errors_are_not_cached() {
        let c: Cache<Vec<u8>, Rc<u8>> = Cache::new(4);
        let r: Result<_, &str> = c.get_or_try_insert_with(0, b"a".as_slice(), || Err("bad"));
        assert!(r.is_err());
        assert!(c.is_empty());
        let v = c
            .get_or_try_insert_with::<_, ()>(0, b"a".as_slice(), || Ok(Rc::new(1)))
            .expect("made");
        assert_eq!(*v, 1);
        let again = c
            .get_or_try_insert_with::<_, ()>(0, b"a".as_slice(), || Ok(Rc::new(2)))
            .expect("hit");
        assert!(Rc::ptr_eq(&v, &again));
    }

    thread_local! {
        static NESTED: Cache<u32, Rc<Noisy>> = const { Cache::new(1) };
    }

    /// A value whose drop looks the cache up, as a value freeing a resource may.
    struct Noisy;
    impl Drop for Noisy {
        fn drop(&mut self) {
            // (not while the thread's cache itself is being destroyed)
            let _ = NESTED.try_with(|c| c.len());
        }
    }

    #[test]
    fn made_and_dropped_outside_the_borrow() {
        NESTED.with(|c| {
            // a nested lookup while making a value, then its value replaced by ours
            let v = c.get_or_insert_with(0, &1, || {
                c.get_or_insert_with(0, &1, || Rc::new(Noisy));
                Rc::new(Noisy)
            });
            assert_eq!(c.len(), 1);
            drop(v);
            // evictions and a new generation drop values after the borrow
            c.get_or_insert_with(0, &2, || Rc::new(Noisy));
            c.get_or_insert_with(1, &3, || Rc::new(Noisy));
            assert_eq!(c.len(), 1);
        });
    }
}
