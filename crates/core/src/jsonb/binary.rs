//! PostgreSQL's binary jsonb read and written in place: the format of `src/include/utils/jsonb.h`
//! (a container is a header word, one JEntry word per key and value, then their data; object keys
//! sorted by length, then bytes). [`Container`] reads members where they lie, [`Node`] is a result
//! in which everything untouched stays a borrowed [`Item`] (a whole nested container included) and
//! [`encode`] writes it, copying borrowed containers byte for byte: the work is proportional to
//! what changes, not to the document.
//!
//! Numbers stay PostgreSQL numerics (their varlena bytes); comparing two of them by value is the
//! caller's (`NumEq`), as only the server knows the numeric format's arithmetic.

use std::borrow::Cow;
use std::cmp::Ordering;

const JENTRY_OFFLENMASK: u32 = 0x0FFF_FFFF;
const JENTRY_TYPEMASK: u32 = 0x7000_0000;
const JENTRY_HAS_OFF: u32 = 0x8000_0000;
const JENTRY_ISSTRING: u32 = 0x0000_0000;
const JENTRY_ISNUMERIC: u32 = 0x1000_0000;
const JENTRY_ISBOOL_FALSE: u32 = 0x2000_0000;
const JENTRY_ISBOOL_TRUE: u32 = 0x3000_0000;
const JENTRY_ISNULL: u32 = 0x4000_0000;
const JENTRY_ISCONTAINER: u32 = 0x5000_0000;
const JB_CMASK: u32 = 0x0FFF_FFFF;
const JB_FSCALAR: u32 = 0x1000_0000;
const JB_FOBJECT: u32 = 0x2000_0000;
const JB_FARRAY: u32 = 0x4000_0000;
const JB_OFFSET_STRIDE: usize = 32;
/// The varlena header in front of the root container: `encode` leaves it for the caller.
pub const VARHDRSZ: usize = 4;

/// Numeric equality by value, on two numerics' varlena bytes.
pub type NumEq<'f> = &'f dyn Fn(&[u8], &[u8]) -> bool;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// jsonb's key order: shorter first, then bytewise.
pub fn key_cmp(a: &[u8], b: &[u8]) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// A stored container, from its header word to its last byte. A malformed one reads as empty
/// members rather than past its end.
#[derive(Clone, Copy, Debug)]
pub struct Container<'a> {
    bytes: &'a [u8],
}

/// One member or element as stored.
#[derive(Clone, Copy, Debug)]
pub enum Item<'a> {
    Null,
    Bool(bool),
    String(&'a [u8]),
    /// A numeric's varlena bytes, header included.
    Numeric(&'a [u8]),
    Container(Container<'a>),
}

impl<'a> Container<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Container { bytes }
    }

    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    #[inline(always)]
    fn word(&self, at: usize) -> u32 {
        self.bytes
            .get(at..at + 4)
            .and_then(|w| w.try_into().ok())
            .map_or(0, u32::from_ne_bytes)
    }

    #[inline(always)]
    fn header(&self) -> u32 {
        self.word(0)
    }

    /// Members of an object, elements of an array.
    pub fn count(&self) -> usize {
        (self.header() & JB_CMASK) as usize
    }

    pub fn is_object(&self) -> bool {
        self.header() & JB_FOBJECT != 0
    }

    pub fn is_array(&self) -> bool {
        self.header() & JB_FARRAY != 0
    }

    /// A root holding a lone scalar (stored as a one-element array).
    pub fn is_scalar(&self) -> bool {
        self.header() & JB_FSCALAR != 0
    }

    #[inline(always)]
    fn entries(&self) -> usize {
        if self.is_object() {
            self.count() * 2
        } else {
            self.count()
        }
    }

    #[inline(always)]
    fn entry(&self, i: usize) -> u32 {
        self.word(4 + 4 * i)
    }

    #[inline(always)]
    fn data_start(&self) -> usize {
        4 + 4 * self.entries()
    }

    /// Where entry i's data starts, from the data area's start (jsonb's getJsonbOffset).
    fn offset(&self, i: usize) -> usize {
        let mut off = 0;
        for j in (0..i).rev() {
            let e = self.entry(j);
            off += (e & JENTRY_OFFLENMASK) as usize;
            if e & JENTRY_HAS_OFF != 0 {
                break;
            }
        }
        off
    }

    /// Entry i's length given where it starts.
    #[inline(always)]
    fn length(&self, i: usize, off: usize) -> usize {
        let e = self.entry(i);
        let field = (e & JENTRY_OFFLENMASK) as usize;
        if e & JENTRY_HAS_OFF != 0 {
            field.saturating_sub(off)
        } else {
            field
        }
    }

    #[inline(always)]
    fn slice(&self, from: usize, to: usize) -> &'a [u8] {
        self.bytes.get(from..to).unwrap_or(&[])
    }

    #[inline(always)]
    fn item(&self, i: usize, off: usize, len: usize) -> Item<'a> {
        let base = self.data_start();
        match self.entry(i) & JENTRY_TYPEMASK {
            JENTRY_ISSTRING => Item::String(self.slice(base + off, base + off + len)),
            JENTRY_ISNUMERIC => Item::Numeric(self.slice(base + align4(off), base + off + len)),
            JENTRY_ISBOOL_FALSE => Item::Bool(false),
            JENTRY_ISBOOL_TRUE => Item::Bool(true),
            JENTRY_ISCONTAINER => Item::Container(Container::new(
                self.slice(base + align4(off), base + off + len),
            )),
            _ => Item::Null,
        }
    }

    fn at(&self, i: usize) -> Item<'a> {
        let off = self.offset(i);
        self.item(i, off, self.length(i, off))
    }

    /// An object's members in key order (empty for an array).
    pub fn pairs(&self) -> Pairs<'a> {
        let n = if self.is_object() { self.count() } else { 0 };
        Pairs {
            c: *self,
            i: 0,
            n,
            key_off: 0,
            value_off: self.offset(n),
        }
    }

    /// An array's elements in order (empty for an object).
    pub fn elems(&self) -> Elems<'a> {
        let n = if self.is_array() { self.count() } else { 0 };
        Elems {
            c: *self,
            i: 0,
            n,
            off: 0,
        }
    }

    /// Element i of an array.
    pub fn elem(&self, i: usize) -> Option<Item<'a>> {
        (self.is_array() && i < self.count()).then(|| self.at(i))
    }

    /// Member `key` of an object, by binary search.
    pub fn get(&self, key: &[u8]) -> Option<Item<'a>> {
        if !self.is_object() {
            return None;
        }
        let n = self.count();
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let off = self.offset(mid);
            let k = self.slice(
                self.data_start() + off,
                self.data_start() + off + self.length(mid, off),
            );
            match key_cmp(k, key) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Some(self.at(n + mid)),
            }
        }
        None
    }

    /// The document a root container is: its lone scalar, or itself.
    pub fn root_item(&self) -> Item<'a> {
        if self.is_scalar() {
            self.elem(0).unwrap_or(Item::Null)
        } else {
            Item::Container(*self)
        }
    }
}

/// See [`Container::pairs`].
pub struct Pairs<'a> {
    c: Container<'a>,
    i: usize,
    n: usize,
    key_off: usize,
    value_off: usize,
}

impl Pairs<'_> {
    const EMPTY: Pairs<'static> = Pairs {
        c: Container { bytes: &[] },
        i: 0,
        n: 0,
        key_off: 0,
        value_off: 0,
    };
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a [u8], Item<'a>);
    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.i >= self.n {
            return None;
        }
        let (i, n, base) = (self.i, self.n, self.c.data_start());
        let klen = self.c.length(i, self.key_off);
        let key = self
            .c
            .slice(base + self.key_off, base + self.key_off + klen);
        let vlen = self.c.length(n + i, self.value_off);
        let value = self.c.item(n + i, self.value_off, vlen);
        self.key_off += klen;
        self.value_off += vlen;
        self.i += 1;
        Some((key, value))
    }
}

/// See [`Container::elems`].
pub struct Elems<'a> {
    c: Container<'a>,
    i: usize,
    n: usize,
    off: usize,
}

impl<'a> Iterator for Elems<'a> {
    type Item = Item<'a>;
    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.i >= self.n {
            return None;
        }
        let len = self.c.length(self.i, self.off);
        let item = self.c.item(self.i, self.off, len);
        self.off += len;
        self.i += 1;
        Some(item)
    }
}

fn object_of(item: Item<'_>) -> Option<Container<'_>> {
    match item {
        Item::Container(c) if c.is_object() => Some(c),
        _ => None,
    }
}

/// Equality by value, as jsonb's `=`: numbers by `num_eq`, containers member by member.
pub fn items_equal(a: Item<'_>, b: Item<'_>, num_eq: NumEq<'_>) -> bool {
    match (a, b) {
        (Item::Null, Item::Null) => true,
        (Item::Bool(x), Item::Bool(y)) => x == y,
        (Item::String(x), Item::String(y)) => x == y,
        (Item::Numeric(x), Item::Numeric(y)) => x == y || num_eq(x, y),
        (Item::Container(x), Item::Container(y)) => {
            if x.bytes == y.bytes {
                return true;
            }
            crate::stack::check();
            if x.header() != y.header() {
                false
            } else if x.is_object() {
                x.pairs()
                    .zip(y.pairs())
                    .all(|((ka, va), (kb, vb))| ka == kb && items_equal(va, vb, num_eq))
            } else {
                x.elems()
                    .zip(y.elems())
                    .all(|(p, q)| items_equal(p, q, num_eq))
            }
        }
        _ => false,
    }
}

/// A value being built: stored items where nothing changed, objects and arrays where something did.
#[derive(Clone, Debug)]
pub enum Node<'a> {
    Item(Item<'a>),
    /// Members in key order, unique keys.
    Object(Vec<(Cow<'a, [u8]>, Node<'a>)>),
    Array(Vec<Node<'a>>),
}

impl<'a> Node<'a> {
    /// One level of a stored container opened up (a no-op for anything else).
    pub fn expand(&mut self) {
        if let Node::Item(Item::Container(c)) = *self {
            *self = if c.is_object() {
                Node::Object(
                    c.pairs()
                        .map(|(k, v)| (Cow::Borrowed(k), Node::Item(v)))
                        .collect(),
                )
            } else {
                Node::Array(c.elems().map(Node::Item).collect())
            };
        }
    }

    /// Equality by value with a stored item.
    pub fn equals(&self, other: Item<'_>, num_eq: NumEq<'_>) -> bool {
        match (self, other) {
            (Node::Item(a), b) => items_equal(*a, b, num_eq),
            (Node::Object(pairs), Item::Container(c)) if c.is_object() => {
                crate::stack::check();
                pairs.len() == c.count()
                    && pairs
                        .iter()
                        .zip(c.pairs())
                        .all(|((ka, va), (kb, vb))| **ka == *kb && va.equals(vb, num_eq))
            }
            (Node::Array(elems), Item::Container(c)) if c.is_array() && !c.is_scalar() => {
                crate::stack::check();
                elems.len() == c.count()
                    && elems
                        .iter()
                        .zip(c.elems())
                        .all(|(a, b)| a.equals(b, num_eq))
            }
            _ => false,
        }
    }
}

/// The result does not fit a jsonb container (PostgreSQL's limit: 2^28 − 1 bytes of members).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

/// Where encoded bytes go: nowhere (measuring) or into a buffer sized by a measuring pass.
struct Sink<'b> {
    out: Option<&'b mut [u8]>,
    len: usize,
}

impl Sink<'_> {
    fn append(&mut self, bytes: &[u8]) {
        if let Some(out) = self.out.as_deref_mut() {
            out[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        }
        self.len += bytes.len();
    }

    /// Zero bytes up to a 4-byte boundary; how many.
    fn pad(&mut self) -> usize {
        let n = align4(self.len) - self.len;
        self.append(&[0; 3][..n]);
        n
    }

    /// Room for `n` words to fill in later; where it starts.
    fn reserve(&mut self, n: usize) -> usize {
        let at = self.len;
        if let Some(out) = self.out.as_deref_mut() {
            out[at..at + 4 * n].fill(0);
        }
        self.len += 4 * n;
        at
    }

    fn put(&mut self, at: usize, word: u32) {
        if let Some(out) = self.out.as_deref_mut() {
            out[at..at + 4].copy_from_slice(&word.to_ne_bytes());
        }
    }

    fn word(&mut self, word: u32) {
        self.append(&word.to_ne_bytes());
    }
}

fn check(len: usize) -> Result<u32, TooLarge> {
    u32::try_from(len)
        .ok()
        .filter(|&l| l <= JENTRY_OFFLENMASK)
        .ok_or(TooLarge)
}

/// Writes a member's data; returns its JEntry (type and length, padding included).
fn write_item(s: &mut Sink, item: Item<'_>) -> Result<u32, TooLarge> {
    let start = s.len;
    Ok(match item {
        Item::Null => JENTRY_ISNULL,
        Item::Bool(true) => JENTRY_ISBOOL_TRUE,
        Item::Bool(false) => JENTRY_ISBOOL_FALSE,
        Item::String(b) => {
            s.append(b);
            JENTRY_ISSTRING | check(b.len())?
        }
        Item::Numeric(b) => {
            s.pad();
            s.append(b);
            JENTRY_ISNUMERIC | check(s.len - start)?
        }
        Item::Container(c) => {
            s.pad();
            s.append(c.bytes);
            JENTRY_ISCONTAINER | check(s.len - start)?
        }
    })
}

fn write_node(s: &mut Sink, node: &Node<'_>) -> Result<u32, TooLarge> {
    let start = s.len;
    match node {
        Node::Item(item) => return write_item(s, *item),
        Node::Object(pairs) => {
            crate::stack::check();
            s.pad();
            let n = pairs.len();
            s.word(check(n)? | JB_FOBJECT);
            let entries = s.reserve(2 * n);
            let mut total = 0usize;
            for (i, (k, _)) in pairs.iter().enumerate() {
                s.append(k);
                total += k.len();
                let meta = entry(JENTRY_ISSTRING, k.len(), total, i)?;
                s.put(entries + 4 * i, meta);
            }
            for (i, (_, v)) in pairs.iter().enumerate() {
                let meta = write_node(s, v)?;
                let len = (meta & JENTRY_OFFLENMASK) as usize;
                total += len;
                let meta = entry(meta & JENTRY_TYPEMASK, len, total, i + n)?;
                s.put(entries + 4 * (n + i), meta);
            }
        }
        Node::Array(elems) => {
            crate::stack::check();
            s.pad();
            let n = elems.len();
            s.word(check(n)? | JB_FARRAY);
            let entries = s.reserve(n);
            let mut total = 0usize;
            for (i, v) in elems.iter().enumerate() {
                let meta = write_node(s, v)?;
                let len = (meta & JENTRY_OFFLENMASK) as usize;
                total += len;
                let meta = entry(meta & JENTRY_TYPEMASK, len, total, i)?;
                s.put(entries + 4 * i, meta);
            }
        }
    }
    Ok(JENTRY_ISCONTAINER | check(s.len - start)?)
}

/// A JEntry: every JB_OFFSET_STRIDE'th one keeps the end offset instead of the length.
fn entry(kind: u32, len: usize, end: usize, index: usize) -> Result<u32, TooLarge> {
    let end = check(end)?;
    Ok(if index.is_multiple_of(JB_OFFSET_STRIDE) {
        kind | end | JENTRY_HAS_OFF
    } else {
        kind | check(len)?
    })
}

fn write_root(s: &mut Sink, root: &Node<'_>) -> Result<(), TooLarge> {
    s.reserve(VARHDRSZ / 4); // the varlena header, set by the caller
    match root {
        Node::Item(Item::Container(c)) => s.append(c.bytes),
        Node::Item(scalar) => {
            s.word(1 | JB_FARRAY | JB_FSCALAR);
            let at = s.reserve(1);
            let meta = write_item(s, *scalar)?;
            let len = (meta & JENTRY_OFFLENMASK) as usize;
            let meta = entry(meta & JENTRY_TYPEMASK, len, len, 0)?;
            s.put(at, meta);
        }
        container => {
            write_node(s, container)?;
        }
    }
    Ok(())
}

/// Bytes `encode` will write for `root`, varlena header included.
pub fn encoded_len(root: &Node<'_>) -> Result<usize, TooLarge> {
    let mut s = Sink { out: None, len: 0 };
    write_root(&mut s, root)?;
    Ok(s.len)
}

/// Writes `root` as a jsonb datum into `out` (exactly `encoded_len` bytes); the first four bytes
/// are left for the varlena header.
pub fn encode(root: &Node<'_>, out: &mut [u8]) -> Result<(), TooLarge> {
    let mut s = Sink {
        out: Some(out),
        len: 0,
    };
    write_root(&mut s, root)
}

/// Joins two objects' members in key order: `f(left, right)` decides each key's fate.
fn join<'a>(
    a: Option<Container<'a>>,
    b: Container<'a>,
    mut f: impl FnMut(Option<Item<'a>>, Option<Item<'a>>) -> Option<Node<'a>>,
) -> Node<'a> {
    crate::stack::check();
    let mut out = Vec::with_capacity(a.map_or(0, |a| a.count()) + b.count());
    let mut left = a.map(|a| a.pairs()).unwrap_or(Pairs::EMPTY);
    let mut right = b.pairs();
    let (mut l, mut r) = (left.next(), right.next());
    loop {
        let (key, lv, rv) = match (l, r) {
            (Some((ka, va)), Some((kb, vb))) => match key_cmp(ka, kb) {
                Ordering::Less => {
                    l = left.next();
                    (ka, Some(va), None)
                }
                Ordering::Greater => {
                    r = right.next();
                    (kb, None, Some(vb))
                }
                Ordering::Equal => {
                    l = left.next();
                    r = right.next();
                    (ka, Some(va), Some(vb))
                }
            },
            (Some((ka, va)), None) => {
                l = left.next();
                (ka, Some(va), None)
            }
            (None, Some((kb, vb))) => {
                r = right.next();
                (kb, None, Some(vb))
            }
            (None, None) => break,
        };
        if let Some(node) = f(lv, rv) {
            out.push((Cow::Borrowed(key), node));
        }
    }
    Node::Object(out)
}

/// Objects merged key by key, recursively; for anything else `b` wins.
pub fn merge_deep<'a>(a: Item<'a>, b: Item<'a>) -> Node<'a> {
    match (object_of(a), object_of(b)) {
        (Some(ac), Some(bc)) => join(Some(ac), bc, |l, r| match (l, r) {
            (Some(l), Some(r)) => Some(merge_deep(l, r)),
            (l, r) => r.or(l).map(Node::Item),
        }),
        _ => Node::Item(b),
    }
}

/// RFC 7396: `patch` applied to `target`.
pub fn merge_patch<'a>(target: Item<'a>, patch: Item<'a>) -> Node<'a> {
    match object_of(patch) {
        Some(pc) => join(object_of(target), pc, |t, p| match p {
            None => t.map(Node::Item),
            Some(Item::Null) => None,
            Some(p) if object_of(p).is_some() => Some(merge_patch(t.unwrap_or(Item::Null), p)),
            Some(p) => Some(Node::Item(p)),
        }),
        None => Node::Item(patch),
    }
}

/// A merge patch p with merge_patch(a, p) = b.
pub fn diff<'a>(a: Item<'a>, b: Item<'a>, num_eq: NumEq<'_>) -> Node<'a> {
    match (object_of(a), object_of(b)) {
        (Some(ac), Some(bc)) => join(Some(ac), bc, |l, r| match (l, r) {
            (Some(_), None) => Some(Node::Item(Item::Null)),
            (Some(l), Some(r)) if items_equal(l, r, num_eq) => None,
            (Some(l), Some(r)) if object_of(l).is_some() && object_of(r).is_some() => {
                Some(diff(l, r, num_eq))
            }
            (_, r) => r.map(Node::Item),
        }),
        _ => Node::Item(b),
    }
}

/// The members of object `new` that `old` lacks or holds with another value, one level deep (an
/// UPDATE's changed columns with their new values); for anything but two objects, `{}` when equal
/// and `new` otherwise.
pub fn changed_members<'a>(old: Item<'a>, new: Item<'a>, num_eq: NumEq<'_>) -> Node<'a> {
    match (object_of(old), object_of(new)) {
        (Some(o), Some(n)) => join(Some(o), n, |l, r| match (l, r) {
            (Some(l), Some(r)) if items_equal(l, r, num_eq) => None,
            (_, r) => r.map(Node::Item),
        }),
        _ if items_equal(old, new, num_eq) => Node::Object(Vec::new()),
        _ => Node::Item(new),
    }
}

/// An RFC 6902 patch applied to `doc` on the stored form. `None` when any operation fails (the
/// caller reports it with the reference definition, `apply_patch`, which names the failure);
/// `Some` exactly when `apply_patch` succeeds, with the same document.
pub fn patch<'a>(doc: Item<'a>, operations: Item<'a>, num_eq: NumEq<'_>) -> Option<Node<'a>> {
    let Item::Container(ops) = operations else {
        return None;
    };
    if !ops.is_array() || ops.is_scalar() {
        return None;
    }
    let mut root = Node::Item(doc);
    for op in ops.elems() {
        apply_one(&mut root, op, num_eq).ok()?;
    }
    Some(root)
}

fn text<'a>(op: Container<'a>, name: &str) -> Result<&'a str, ()> {
    match op.get(name.as_bytes()) {
        Some(Item::String(s)) => std::str::from_utf8(s).map_err(drop),
        _ => Err(()),
    }
}

fn tokens(pointer: &str) -> Result<Vec<String>, ()> {
    super::pointer::parse_pointer(pointer).map_err(drop)
}

fn apply_one<'a>(root: &mut Node<'a>, op: Item<'a>, num_eq: NumEq<'_>) -> Result<(), ()> {
    let op = object_of(op).ok_or(())?;
    let name = text(op, "op")?;
    let path = tokens(text(op, "path")?)?;
    let value = || op.get(b"value").map(Node::Item).ok_or(());
    match name {
        "add" => add(root, &path, value()?),
        "remove" => remove(root, &path).map(drop),
        "replace" => {
            let v = value()?;
            *get_mut(root, &path)? = v;
            Ok(())
        }
        "move" => {
            let from = tokens(text(op, "from")?)?;
            if from.len() < path.len() && path[..from.len()] == from[..] {
                return Err(());
            }
            let v = remove(root, &from)?;
            add(root, &path, v)
        }
        "copy" => {
            let from = tokens(text(op, "from")?)?;
            let v = get_mut(root, &from)?.clone();
            add(root, &path, v)
        }
        "test" => {
            let Some(expected) = op.get(b"value") else {
                return Err(());
            };
            if get_mut(root, &path)?.equals(expected, num_eq) {
                Ok(())
            } else {
                Err(())
            }
        }
        _ => Err(()),
    }
}

fn find(pairs: &[(Cow<'_, [u8]>, Node<'_>)], key: &str) -> Result<usize, usize> {
    pairs.binary_search_by(|(k, _)| key_cmp(k, key.as_bytes()))
}

fn index(token: &str, len: usize) -> Result<usize, ()> {
    super::patch::array_index(token, len).map_err(drop)
}

fn get_mut<'n, 'a>(node: &'n mut Node<'a>, path: &[String]) -> Result<&'n mut Node<'a>, ()> {
    let mut cur = node;
    for t in path {
        cur.expand();
        cur = match cur {
            Node::Object(pairs) => {
                let i = find(pairs, t).map_err(drop)?;
                &mut pairs[i].1
            }
            Node::Array(elems) => {
                let i = index(t, elems.len())?;
                &mut elems[i]
            }
            Node::Item(_) => return Err(()),
        };
    }
    Ok(cur)
}

fn add<'a>(root: &mut Node<'a>, path: &[String], v: Node<'a>) -> Result<(), ()> {
    let Some((last, parent)) = path.split_last() else {
        *root = v;
        return Ok(());
    };
    let parent = get_mut(root, parent)?;
    parent.expand();
    match parent {
        Node::Object(pairs) => {
            match find(pairs, last) {
                Ok(i) => pairs[i].1 = v,
                Err(i) => pairs.insert(i, (Cow::Owned(last.clone().into_bytes()), v)),
            }
            Ok(())
        }
        Node::Array(elems) => {
            if last == "-" {
                elems.push(v);
            } else {
                let i = index(last, elems.len() + 1)?;
                elems.insert(i, v);
            }
            Ok(())
        }
        Node::Item(_) => Err(()),
    }
}

fn remove<'a>(root: &mut Node<'a>, path: &[String]) -> Result<Node<'a>, ()> {
    let (last, parent) = path.split_last().ok_or(())?;
    let parent = get_mut(root, parent)?;
    parent.expand();
    match parent {
        Node::Object(pairs) => {
            let i = find(pairs, last).map_err(drop)?;
            Ok(pairs.remove(i).1)
        }
        Node::Array(elems) => {
            let i = index(last, elems.len())?;
            Ok(elems.remove(i))
        }
        Node::Item(_) => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
        a == b
    }

    fn enc(node: &Node) -> Vec<u8> {
        let mut out = vec![0xAA; encoded_len(node).unwrap()];
        encode(node, &mut out).unwrap();
        out
    }

    fn root(bytes: &[u8]) -> Item<'_> {
        Container::new(&bytes[VARHDRSZ..]).root_item()
    }

    fn obj<'a>(pairs: &[(&'a str, Node<'a>)]) -> Node<'a> {
        let mut v: Vec<_> = pairs
            .iter()
            .map(|(k, n)| (Cow::Borrowed(k.as_bytes()), n.clone()))
            .collect();
        v.sort_by(|a, b| key_cmp(&a.0, &b.0));
        Node::Object(v)
    }

    fn s(x: &str) -> Node<'_> {
        Node::Item(Item::String(x.as_bytes()))
    }

    /// `{}` and `"x"` as PostgreSQL stores them (header words; a scalar is a one-element array).
    #[test]
    fn encodes_as_postgres_does() {
        let empty = enc(&Node::Object(vec![]));
        assert_eq!(&empty[4..], &0x2000_0000u32.to_ne_bytes());
        let x = enc(&s("x"));
        let mut want = vec![0; 4];
        want.extend(0x5000_0001u32.to_ne_bytes());
        want.extend(0x8000_0001u32.to_ne_bytes());
        want.push(b'x');
        assert_eq!(x, want);
    }

    /// Written, read back, written again from the stored form: the same bytes, members in
    /// jsonb's key order, more than one offset stride of members.
    #[test]
    fn round_trips_through_the_stored_form() {
        let keys: Vec<String> = (0..70).map(|i| format!("k{i}")).collect();
        let inner = obj(&[("b", Node::Item(Item::Bool(true))), ("a", s("é"))]);
        let mut pairs: Vec<(&str, Node)> = keys.iter().map(|k| (k.as_str(), s(k))).collect();
        pairs.push(("nested", inner));
        pairs.push((
            "list",
            Node::Array((0..40).map(|_| Node::Item(Item::Null)).collect()),
        ));
        let doc = obj(&pairs);
        let bytes = enc(&doc);
        let r = root(&bytes);
        let Item::Container(c) = r else {
            panic!("not a container")
        };
        assert_eq!(c.count(), 72);
        let ks: Vec<&[u8]> = c.pairs().map(|(k, _)| k).collect();
        assert!(ks.windows(2).all(|w| key_cmp(w[0], w[1]) == Ordering::Less));
        assert!(matches!(c.get(b"k69"), Some(Item::String(b"k69"))));
        assert!(c.get(b"k70").is_none());
        let Some(Item::Container(list)) = c.get(b"list") else {
            panic!("no list")
        };
        assert_eq!(list.elems().count(), 40);
        assert!(matches!(list.elem(39), Some(Item::Null)));
        // the stored form copied whole, and opened up one level: the same bytes
        assert_eq!(enc(&Node::Item(r)), bytes);
        let mut opened = Node::Item(r);
        opened.expand();
        assert_eq!(enc(&opened), bytes);
        assert!(opened.equals(r, &bytes_eq));
    }

    #[test]
    fn merge_patch_and_diff_on_the_stored_form() {
        let a = enc(&obj(&[("a", s("1")), ("b", obj(&[("c", s("2"))]))]));
        let b = enc(&obj(&[
            ("b", obj(&[("c", s("2")), ("d", s("3"))])),
            ("e", s("4")),
        ]));
        let merged = enc(&merge_deep(root(&a), root(&b)));
        let want = enc(&obj(&[
            ("a", s("1")),
            ("b", obj(&[("c", s("2")), ("d", s("3"))])),
            ("e", s("4")),
        ]));
        assert_eq!(merged, want);
        let d = enc(&diff(root(&a), root(&b), &bytes_eq));
        let want_d = enc(&obj(&[
            ("a", Node::Item(Item::Null)),
            ("b", obj(&[("d", s("3"))])),
            ("e", s("4")),
        ]));
        assert_eq!(d, want_d);
        assert_eq!(
            enc(&merge_patch(root(&a), root(&d))),
            enc(&Node::Item(root(&b)))
        );
    }

    #[test]
    fn patch_on_the_stored_form() {
        let doc = enc(&obj(&[("a", Node::Array(vec![s("x")])), ("b", s("y"))]));
        let op = |o: &'static str, p: &'static str, v: Option<Node<'static>>| {
            let mut m = vec![("op", s(o)), ("path", s(p))];
            if let Some(v) = v {
                m.push(("value", v));
            }
            obj(&m)
        };
        let ops = enc(&Node::Array(vec![
            op("add", "/a/-", Some(s("z"))),
            op("remove", "/b", None),
            op("test", "/a/1", Some(s("z"))),
        ]));
        let got = enc(&patch(root(&doc), root(&ops), &bytes_eq).unwrap());
        assert_eq!(got, enc(&obj(&[("a", Node::Array(vec![s("x"), s("z")]))])));
        let bad = enc(&Node::Array(vec![op("test", "/b", Some(s("n")))]));
        assert!(patch(root(&doc), root(&bad), &bytes_eq).is_none());
        let missing = enc(&Node::Array(vec![op("remove", "/zz", None)]));
        assert!(patch(root(&doc), root(&missing), &bytes_eq).is_none());
    }
}
