//! Rules across rows, which the server would otherwise enforce with
//! REPEAT_REQ_INCONSISTENT or DUPLICATED_DECLARATION, letting timing pick
//! the winner. Only valid rows claim a request ID or an order, and only
//! compact fingerprints are kept (about 50 bytes a row), never rows. The
//! fingerprints are computed with the row's other checks, in parallel;
//! claiming them is the one sequential step, in row order.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use foldhash::quality::FixedState;
use xxhash_rust::xxh3::Xxh3;

use crate::protocol::DeclareRequest;

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
    pub fn of(request: &DeclareRequest) -> Fingerprint {
        // The body is a function of the request's fields, so hashing the
        // fields tells bodies apart as well as hashing the JSON would, at a
        // fraction of the cost. Derived `Hash` ends each string with 0xff
        // (never in UTF-8) and marks each `Option`, so no two requests feed
        // the hasher the same bytes.
        let body = FixedState::with_seed(0).hash_one(request);
        Fingerprint {
            request_id: key(&[request.customs_declaration_request_id.as_bytes()]),
            body: body.to_le_bytes(),
            order: key(&[
                request.customs.customs_code.as_bytes(),
                request.declaration_order_id().as_bytes(),
            ]),
        }
    }
}

fn key(parts: &[&[u8]]) -> Key {
    let mut hasher = Xxh3::new();
    // Length-prefixed, so that ("ab", "c") and ("a", "bc") differ.
    for part in parts {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.digest128().to_le_bytes()[..12]
        .try_into()
        .expect("12 of 16 bytes")
}

/// The keys are hash output already; hashing them again would only cost.
#[derive(Default)]
struct PrehashedKey(u64);

impl Hasher for PrehashedKey {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }
}

type Table<V> = HashMap<Key, V, BuildHasherDefault<PrehashedKey>>;

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
    by_request_id: Table<(u32, [u8; 8])>,
    /// (customs code, order) → row; a second claim can only come under
    /// another request ID, since the same ID is caught first.
    by_order: Table<u32>,
}

impl CrossRowIndex {
    /// Makes room for `rows` more valid rows at once, so that the tables do
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

    /// Checks a valid row against the earlier ones; claims its request ID
    /// and order when there is no conflict.
    pub fn claim(&mut self, row: u64, print: &Fingerprint) -> Result<(), Conflict> {
        let row = u32::try_from(row).unwrap_or(u32::MAX);
        if let Some(&(first_row, first_body)) = self.by_request_id.get(&print.request_id) {
            return Err(if first_body == print.body {
                Conflict::DuplicateRow { first_row }
            } else {
                Conflict::RequestIdReused { first_row }
            });
        }
        if let Some(&first_row) = self.by_order.get(&print.order) {
            return Err(Conflict::OrderAlreadyDeclared { first_row });
        }
        self.by_request_id
            .insert(print.request_id, (row, print.body));
        self.by_order.insert(print.order, row);
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
        if let Some(&(first_row, _)) =
            request_id.and_then(|id| self.by_request_id.get(&key(&[id.as_bytes()])))
        {
            return Some(Conflict::RequestIdReused { first_row });
        }
        let (customs_code, order_id) = order?;
        self.by_order
            .get(&key(&[customs_code.as_bytes(), order_id.as_bytes()]))
            .map(|&first_row| Conflict::OrderAlreadyDeclared { first_row })
    }

    /// Valid rows that claimed an ID so far.
    pub fn len(&self) -> usize {
        self.by_request_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_request_id.is_empty()
    }
}
