//! Rules across rows, which the server would otherwise enforce with
//! REPEAT_REQ_INCONSISTENT or DUPLICATED_DECLARATION, letting timing pick
//! the winner. Only valid rows claim a request ID or an order, and only
//! compact fingerprints are kept (about 50 bytes a row), never rows.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use sha2::{Digest, Sha256};

use crate::protocol::DeclareRequest;

/// 96 bits of SHA-256: for a million keys the chance of any collision is
/// about 1e-17, so a key stands for its ID.
type Key = [u8; 12];

/// The fingerprints are SHA-256 output already; hashing them again for the
/// table would only cost time.
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
#[derive(Debug, Clone, PartialEq, Eq)]
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

fn key(parts: &[&[u8]]) -> Sha256 {
    let mut hasher = Sha256::new();
    for part in parts {
        // Length-prefixed, so that ("ab", "c") and ("a", "bc") differ.
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher
}

fn truncate<const N: usize>(hasher: Sha256) -> [u8; N] {
    hasher.finalize()[..N].try_into().expect("N <= 32")
}

impl CrossRowIndex {
    /// Checks a valid row against the earlier ones; claims its request ID
    /// and order when there is no conflict.
    pub fn claim(
        &mut self,
        row: u64,
        request: &DeclareRequest,
        body: &[u8],
    ) -> Result<(), Conflict> {
        let row = u32::try_from(row).unwrap_or(u32::MAX);
        let id_key: Key = truncate(key(&[request.customs_declaration_request_id.as_bytes()]));
        let body_print: [u8; 8] = truncate(key(&[body]));
        if let Some(&(first_row, first_body)) = self.by_request_id.get(&id_key) {
            return Err(if first_body == body_print {
                Conflict::DuplicateRow { first_row }
            } else {
                Conflict::RequestIdReused { first_row }
            });
        }
        let order_key: Key = truncate(key(&[
            request.customs.customs_code.as_bytes(),
            request.declaration_order_id().as_bytes(),
        ]));
        if let Some(&first_row) = self.by_order.get(&order_key) {
            return Err(Conflict::OrderAlreadyDeclared { first_row });
        }
        self.by_request_id.insert(id_key, (row, body_print));
        self.by_order.insert(order_key, row);
        Ok(())
    }

    /// Valid rows that claimed an ID so far.
    pub fn len(&self) -> usize {
        self.by_request_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_request_id.is_empty()
    }
}
