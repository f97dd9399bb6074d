//! Rules across rows, which the server would otherwise enforce with
//! REPEAT_REQ_INCONSISTENT or DUPLICATED_DECLARATION, letting timing pick
//! the winner. Only valid rows claim a request ID or an order, and only
//! compact fingerprints are kept (about 50 bytes a row), never rows. The
//! fingerprints are computed with the row's other checks, in parallel;
//! claiming them is the one sequential step, in row order.

use xxhash_rust::xxh3::Xxh3;

use super::valid_fields::RequestFields;

/// 96 bits of a 128-bit hash: for a million keys the chance of any
/// collision is about 1e-17, so a key stands for its ID.
pub type Key = [u8; 12];

/// What a valid row would claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    request_id: Key,
    body: [u8; 8],
    order: Key,
}

impl Fingerprint {
    pub(super) fn of(fields: &RequestFields<'_>) -> Fingerprint {
        // The body is a function of the request's fields, so hashing the
        // fields tells bodies apart as well as hashing the JSON would, at a
        // fraction of the cost.
        Fingerprint {
            request_id: key(&[fields.request_id.as_bytes()]),
            body: fields.body_hash().to_le_bytes(),
            order: key(&[
                fields.customs_code.as_bytes(),
                fields.declaration_order_id().as_bytes(),
            ]),
        }
    }
}

fn key(parts: &[&[u8]]) -> Key {
    // Length-prefixed, so that ("ab", "c") and ("a", "bc") differ. IDs are
    // short: laid out on the stack and hashed at once, which costs a
    // fraction of a streaming hasher's set-up.
    let mut laid_out = [0u8; 256];
    let mut at = 0;
    for part in parts {
        let Some(place) = laid_out.get_mut(at..at + 8 + part.len()) else {
            return streamed_key(parts);
        };
        place[..8].copy_from_slice(&(part.len() as u64).to_le_bytes());
        place[8..].copy_from_slice(part);
        at += 8 + part.len();
    }
    first_12(xxhash_rust::xxh3::xxh3_128(&laid_out[..at]))
}

/// [`key`] for parts too long to lay out on the stack: the same hash.
fn streamed_key(parts: &[&[u8]]) -> Key {
    let mut hasher = Xxh3::new();
    for part in parts {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    first_12(hasher.digest128())
}

fn first_12(hash: u128) -> Key {
    hash.to_le_bytes()[..12].try_into().expect("12 of 16 bytes")
}

/// A table of keys to rows, open-addressed with linear probing. The keys
/// are hash output already, so their first bytes place them; a slot is
/// free while its row is 0 (rows are numbered from 1). With a million
/// rows the tables outgrow every cache and each claim would wait for
/// memory: laid out in one vector, a slot's place is known before it is
/// needed, so `prefetch` can ask for it rows ahead. A reserved table is
/// written whole at once (up to 80 MB for the million rows reserved at
/// most): left as untouched zero pages, each claim's prefetch met a page
/// not yet mapped, which a prefetch does not map, and validating a million
/// rows took a fifth longer.
struct Table<V: Copy + Default> {
    slots: Vec<Slot<V>>,
    len: usize,
}

#[derive(Clone, Copy, Default)]
struct Slot<V: Copy + Default> {
    key: Key,
    row: u32,
    value: V,
}

impl<V: Copy + Default> Default for Table<V> {
    fn default() -> Self {
        Table {
            slots: Vec::new(),
            len: 0,
        }
    }
}

impl<V: Copy + Default> Table<V> {
    /// Slots at most three quarters full.
    fn slots_for(rows: usize) -> usize {
        (rows.saturating_mul(4) / 3 + 1).next_power_of_two().max(16)
    }

    fn home(&self, key: &Key) -> usize {
        let mut first = [0u8; 8];
        first.copy_from_slice(&key[..8]);
        (u64::from_le_bytes(first) as usize) & (self.slots.len() - 1)
    }

    fn get(&self, key: &Key) -> Option<(u32, V)> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut at = self.home(key);
        loop {
            let slot = &self.slots[at];
            if slot.row == 0 {
                return None;
            }
            if slot.key == *key {
                return Some((slot.row, slot.value));
            }
            at = (at + 1) & mask;
        }
    }

    /// Inserts a key not in the table.
    fn insert_new(&mut self, key: Key, row: u32, value: V) {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.reserve(self.len + 1);
        }
        let mask = self.slots.len() - 1;
        let mut at = self.home(&key);
        while self.slots[at].row != 0 {
            at = (at + 1) & mask;
        }
        self.slots[at] = Slot {
            key,
            row: row.max(1),
            value,
        };
        self.len += 1;
    }

    /// Room for `rows` keys in all without growing.
    fn reserve(&mut self, rows: usize) {
        let wanted = Self::slots_for(rows.max(self.len));
        if wanted <= self.slots.len() {
            return;
        }
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); wanted]);
        self.len = 0;
        for slot in old.into_iter().filter(|slot| slot.row != 0) {
            self.insert_new(slot.key, slot.row, slot.value);
        }
    }

    /// Asks the memory for the slot `key` would start at.
    fn prefetch(&self, key: &Key) {
        if self.slots.is_empty() {
            return;
        }
        let slot: *const Slot<V> = &self.slots[self.home(key)];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch only hints the cache; the address is a live slot.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(slot.cast());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = slot;
    }

    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.slots.len() * 3 / 4
    }

    fn len(&self) -> usize {
        self.len
    }
}

/// Why a valid row may not be declared after all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// Same request ID, same body as an earlier row.
    DuplicateRow { first_row: u32 },
    /// Same request ID, different body.
    RequestIdReused { first_row: u32 },
    /// Same order at the same customs under another request ID.
    OrderAlreadyDeclared { first_row: u32 },
}

/// Request IDs and orders claimed by earlier valid rows.
#[derive(Default)]
pub struct CrossRowIndex {
    /// request ID → (row, body fingerprint)
    by_request_id: Table<[u8; 8]>,
    /// (customs code, order) → row; a second claim can only come under
    /// another request ID, since the same ID is caught first.
    by_order: Table<()>,
}

impl CrossRowIndex {
    /// Makes room for `rows` valid rows in all at once, so that the tables do
    /// not regrow (and fault in fresh pages) again and again.
    pub fn reserve(&mut self, rows: usize) {
        self.by_request_id.reserve(rows);
        self.by_order.reserve(rows);
    }

    /// Rows the tables hold without growing.
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.by_request_id.capacity().min(self.by_order.capacity())
    }

    /// Asks the memory for the places a row's claim will look at, a few
    /// rows before it is claimed.
    pub fn prefetch(&self, print: &Fingerprint) {
        self.by_request_id.prefetch(&print.request_id);
        self.by_order.prefetch(&print.order);
    }

    /// Checks a valid row against the earlier ones; claims its request ID
    /// and order when there is no conflict.
    pub fn claim(&mut self, row: u64, print: &Fingerprint) -> Result<(), Conflict> {
        let row = u32::try_from(row).unwrap_or(u32::MAX);
        if let Some((first_row, first_body)) = self.by_request_id.get(&print.request_id) {
            return Err(if first_body == print.body {
                Conflict::DuplicateRow { first_row }
            } else {
                Conflict::RequestIdReused { first_row }
            });
        }
        if let Some((first_row, ())) = self.by_order.get(&print.order) {
            return Err(Conflict::OrderAlreadyDeclared { first_row });
        }
        self.by_request_id
            .insert_new(print.request_id, row, print.body);
        self.by_order.insert_new(print.order, row, ());
        Ok(())
    }

    /// What a rejected row would meet, claiming nothing: an earlier valid
    /// row with its request ID, or its order at its customs. A fixed row
    /// that goes on to reuse an order is told now, with its other errors.
    pub fn conflict_of(
        &self,
        request_id: Option<&str>,
        order: Option<(&str, &str)>,
    ) -> Option<Conflict> {
        if let Some((first_row, _)) =
            request_id.and_then(|id| self.by_request_id.get(&key(&[id.as_bytes()])))
        {
            return Some(Conflict::RequestIdReused { first_row });
        }
        let (customs_code, order_id) = order?;
        self.by_order
            .get(&key(&[customs_code.as_bytes(), order_id.as_bytes()]))
            .map(|(first_row, ())| Conflict::OrderAlreadyDeclared { first_row })
    }

    /// Valid rows that claimed an ID so far.
    pub fn len(&self) -> usize {
        self.by_request_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_request_id.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(n: u64) -> Key {
        key(&[&n.to_le_bytes()])
    }

    #[test]
    fn a_key_is_the_same_laid_out_or_streamed() {
        let long = "9".repeat(300);
        for parts in [
            vec!["ZONGSHU".as_bytes(), b"ORD1"],
            vec![b"D1"],
            vec![b"", b""],
            vec![b"ZONGSHU", long.as_bytes()],
        ] {
            assert_eq!(key(&parts), streamed_key(&parts));
        }
        assert_ne!(key(&[b"ab", b"c"]), key(&[b"a", b"bc"]));
    }

    #[test]
    fn the_table_finds_every_key_through_collisions_and_growth() {
        let mut table: Table<[u8; 8]> = Table::default();
        assert_eq!(table.get(&key_of(1)), None, "an empty table");
        table.reserve(100);
        // Far past what was reserved: it grows and keeps every key.
        for n in 1..=10_000u64 {
            table.insert_new(key_of(n), n as u32, n.to_le_bytes());
        }
        assert_eq!(table.len(), 10_000);
        for n in 1..=10_000u64 {
            assert_eq!(table.get(&key_of(n)), Some((n as u32, n.to_le_bytes())));
        }
        assert_eq!(table.get(&key_of(10_001)), None);
        // Keys whose first bytes agree all land on one place.
        let mut crowded: Table<()> = Table::default();
        let twins: Vec<Key> = (0..20u8)
            .map(|n| {
                let mut key = [7u8; 12];
                key[11] = n;
                key
            })
            .collect();
        for (row, key) in twins.iter().enumerate() {
            crowded.insert_new(*key, row as u32 + 2, ());
        }
        for (row, key) in twins.iter().enumerate() {
            assert_eq!(crowded.get(key), Some((row as u32 + 2, ())));
            crowded.prefetch(key);
        }
        assert!(crowded.capacity() >= 20);
    }
}
