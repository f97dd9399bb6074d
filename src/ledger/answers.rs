//! Raw answers stored compactly, and the short texts the ledger interns.
//!
//! An answer from the API repeats what the ledger keeps anyway: its result
//! code, message and status (on its call) and the PSP's fields (on its
//! declaration). Each of those values, where the answer holds it as a JSON
//! string, is replaced by a placeholder character; what is left, the
//! answer's *shape*, is the same for every answer of a kind and is stored
//! once, in `shapes`, so a call keeps a small integer instead of the
//! answer. Reading the answer back puts the values in again, byte for
//! byte: an encoding is kept only if it decodes to the exact answer.
//!
//! A declaration's fields can change after an answer was stored against
//! them (a retransmission answered, an inquiry settling it); before they
//! do, the writes copy the old values into the earlier calls
//! (`answer_values`, see `FREEZE_ANSWERS_SQL`), so an answer always decodes
//! with the values it was stored with.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

/// Placeholders: control characters a JSON text never holds unescaped.
/// 0x10–0x12 are the call's own values, 0x13–0x19 the declaration's.
const FIRST_PLACEHOLDER: u32 = 0x10;
const PLACEHOLDERS: usize = 10;

/// An answer's shape longer than this is not interned (kept whole).
const LONGEST_SHAPE: usize = 4096;

/// Past this many shapes, answers are kept whole (and dropped with the
/// other raw answers) rather than adding a shape each: an endpoint whose
/// every answer differs in more than the known fields (a time stamp, say)
/// must not grow the table for ever. Shapes no call uses any more are
/// deleted at a run's end once there are more than `FEW_SHAPES`.
const MOST_SHAPES: i64 = 10_000;
pub(super) const FEW_SHAPES: i64 = 1_000;

/// Texts remembered at most per writer: a run whose every answer has a
/// message of its own must not grow them with its rows.
const MOST_REMEMBERED: usize = 4_096;

/// The values an answer is encoded against: the call's result code,
/// message and status, then the declaration's PSP fields, in
/// `DECLARATION_VALUES` order.
pub(super) struct AnswerValues<'a> {
    pub own: [&'a str; 3],
    pub declaration: [&'a str; 7],
}

impl AnswerValues<'_> {
    fn get(&self, index: usize) -> &str {
        if index < 3 {
            self.own[index]
        } else {
            self.declaration[index - 3]
        }
    }
}

/// Before a declaration's PSP fields change: every earlier call whose
/// answer is stored against them gets them copied (`?1`: the declaration).
pub(super) const FREEZE_ANSWERS_SQL: &str = concat!(
    "UPDATE calls SET answer_values = (SELECT json_array(",
    psp_values_of_d!(),
    ") FROM declarations d WHERE d.id = ?1)
     WHERE declaration_id = ?1 AND answer_shape IS NOT NULL AND answer_values IS NULL"
);

/// The seven values `psp_values_of_d!` selects, from column `first` on.
pub(super) fn psp_values(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<[String; 7]> {
    Ok([
        row.get(first)?,
        row.get(first + 1)?,
        row.get(first + 2)?,
        row.get(first + 3)?,
        row.get(first + 4)?,
        row.get(first + 5)?,
        row.get(first + 6)?,
    ])
}

/// How an answer is stored: a shape (interned) or the whole text.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct StoredAnswer {
    pub shape: Option<String>,
    pub text: Option<String>,
}

fn placeholder(index: usize) -> char {
    char::from_u32(FIRST_PLACEHOLDER + index as u32).unwrap_or('\u{10}')
}

fn placeholder_index(c: char) -> Option<usize> {
    let code = c as u32;
    (FIRST_PLACEHOLDER..FIRST_PLACEHOLDER + PLACEHOLDERS as u32)
        .contains(&code)
        .then(|| (code - FIRST_PLACEHOLDER) as usize)
}

/// A value as a JSON string, the form searched for in the answer.
fn json_string(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Encodes `answer` against `values`: its shape when that decodes back to
/// it exactly, else the whole text. An empty answer is no answer.
pub(super) fn encode(answer: &str, values: &AnswerValues) -> StoredAnswer {
    if answer.is_empty() {
        return StoredAnswer::default();
    }
    let whole = || StoredAnswer {
        shape: None,
        text: Some(answer.to_owned()),
    };
    if answer.chars().any(|c| placeholder_index(c).is_some()) {
        return whole();
    }
    let mut shape = answer.to_owned();
    for index in 0..PLACEHOLDERS {
        let value = values.get(index);
        if value.is_empty() {
            continue;
        }
        let literal = json_string(value);
        if shape.contains(&literal) {
            shape = shape.replace(&literal, placeholder(index).encode_utf8(&mut [0; 4]));
        }
    }
    if shape.len() > LONGEST_SHAPE || decode(&shape, values) != answer {
        return whole();
    }
    StoredAnswer {
        shape: Some(shape),
        text: None,
    }
}

/// An answer back from its shape and the values it was encoded against.
pub(super) fn decode(shape: &str, values: &AnswerValues) -> String {
    let mut answer = String::with_capacity(shape.len() + 128);
    for c in shape.chars() {
        match placeholder_index(c) {
            Some(index) => answer.push_str(&json_string(values.get(index))),
            None => answer.push(c),
        }
    }
    answer
}

/// The interned texts and shapes of one connection's writes: an ID never
/// changes once committed, so they are remembered (a few thousand at most);
/// a failed transaction forgets them all (its IDs may be gone).
#[derive(Default)]
pub(super) struct Texts {
    ids: HashMap<String, i64>,
    shapes: HashMap<String, i64>,
    targets: HashMap<(String, String, String), i64>,
    /// Shapes in the ledger, once counted.
    shape_count: Option<i64>,
}

impl Texts {
    /// The ID of `text`, interning it; none for an empty text.
    pub(super) fn id(&mut self, tx: &Connection, text: &str) -> rusqlite::Result<Option<i64>> {
        if text.is_empty() {
            return Ok(None);
        }
        if let Some(&id) = self.ids.get(text) {
            return Ok(Some(id));
        }
        tx.prepare_cached("INSERT INTO texts(text) VALUES (?1) ON CONFLICT(text) DO NOTHING")?
            .execute(params![text])?;
        let id: i64 = tx
            .prepare_cached("SELECT id FROM texts WHERE text = ?1")?
            .query_row(params![text], |row| row.get(0))?;
        if self.ids.len() >= MOST_REMEMBERED {
            self.ids.clear();
        }
        self.ids.insert(text.to_owned(), id);
        Ok(Some(id))
    }

    /// The ID of an answer's shape, unless there are too many shapes to add
    /// one more (the answer is then kept whole).
    pub(super) fn shape_id(
        &mut self,
        tx: &Connection,
        shape: &str,
    ) -> rusqlite::Result<Option<i64>> {
        if let Some(&id) = self.shapes.get(shape) {
            return Ok(Some(id));
        }
        let known: Option<i64> = tx
            .prepare_cached("SELECT id FROM shapes WHERE shape = ?1")?
            .query_row(params![shape], |row| row.get(0))
            .optional()?;
        let id = match known {
            Some(id) => id,
            None => {
                let count = match self.shape_count {
                    Some(count) => count,
                    None => tx.query_row("SELECT count(*) FROM shapes", [], |row| row.get(0))?,
                };
                if count >= MOST_SHAPES {
                    self.shape_count = Some(count);
                    return Ok(None);
                }
                tx.prepare_cached("INSERT INTO shapes(shape) VALUES (?1)")?
                    .execute(params![shape])?;
                self.shape_count = Some(count + 1);
                tx.last_insert_rowid()
            }
        };
        if self.shapes.len() >= MOST_REMEMBERED {
            self.shapes.clear();
        }
        self.shapes.insert(shape.to_owned(), id);
        Ok(Some(id))
    }

    /// The ID of a customs code and merchant, interning them.
    pub(super) fn target(
        &mut self,
        tx: &Connection,
        customs_code: &str,
        merchant_code: &str,
        merchant_name: &str,
    ) -> rusqlite::Result<i64> {
        let key = (
            customs_code.to_owned(),
            merchant_code.to_owned(),
            merchant_name.to_owned(),
        );
        if let Some(&id) = self.targets.get(&key) {
            return Ok(id);
        }
        tx.prepare_cached(
            "INSERT INTO targets(customs_code, merchant_customs_code, merchant_customs_name)
             VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        )?
        .execute(params![customs_code, merchant_code, merchant_name])?;
        let id: i64 = tx
            .prepare_cached(
                "SELECT id FROM targets WHERE customs_code = ?1 AND merchant_customs_code = ?2
                   AND merchant_customs_name = ?3",
            )?
            .query_row(params![customs_code, merchant_code, merchant_name], |row| {
                row.get(0)
            })?;
        if self.targets.len() >= MOST_REMEMBERED {
            self.targets.clear();
        }
        self.targets.insert(key, id);
        Ok(id)
    }

    /// Forgets every ID: after a transaction that failed.
    pub(super) fn forget(&mut self) {
        *self = Texts::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = r#"{"result":{"resultCode":"SUCCESS","resultMessage":"Success","resultStatus":"S"},"pspPaymentId":"2000001","pspDeclarationRequestId":"2026000","pspCustomsCode":"31222699S7","clearingTransactionId":"0000008","clearingChannel":"CUP","pspOrderAmount":{"currency":"CNY","value":"1000000"},"identityCheckResult":"CHECK_PASSED"}"#;

    fn values<'a>(payment: &'a str) -> AnswerValues<'a> {
        AnswerValues {
            own: ["SUCCESS", "Success", "S"],
            declaration: [
                payment,
                "2026000",
                "31222699S7",
                "0000008",
                "CUP",
                "1000000",
                "CHECK_PASSED",
            ],
        }
    }

    #[test]
    fn an_answer_is_its_shape_and_comes_back_byte_for_byte() {
        let stored = encode(ANSWER, &values("2000001"));
        let shape = stored.shape.expect("a shape");
        assert!(stored.text.is_none());
        assert!(!shape.contains("2000001") && !shape.contains("SUCCESS"));
        assert!(shape.len() + 60 < ANSWER.len(), "{shape}");
        assert_eq!(decode(&shape, &values("2000001")), ANSWER);
        // Another row's answer of the same kind has the same shape.
        let other = ANSWER.replace("2000001", "2000002");
        assert_eq!(
            encode(&other, &values("2000002")).shape.as_deref(),
            Some(shape.as_str())
        );
    }

    #[test]
    fn what_cannot_be_shaped_is_kept_whole() {
        // A placeholder character in the answer itself.
        let odd = "{\"a\":\"\u{11}\"}";
        assert_eq!(encode(odd, &values("P")).text.as_deref(), Some(odd));
        // Not JSON at all: no value found, the shape is the text.
        let html = "<html>502 Bad Gateway</html>";
        assert_eq!(encode(html, &values("P")).shape.as_deref(), Some(html));
        // A value escaped another way than serde_json writes it stays in
        // the shape, literally, and still decodes exactly.
        let escaped = r#"{"pspPaymentId":"200\u0030001"}"#;
        let stored = encode(escaped, &values("2000001"));
        assert_eq!(decode(&stored.shape.unwrap(), &values("2000001")), escaped);
        assert_eq!(encode("", &values("P")), StoredAnswer::default());
        // An answer too long to be a shape worth sharing.
        let long = format!("{{\"padding\":\"{}\"}}", "x".repeat(LONGEST_SHAPE));
        let stored = encode(&long, &values("P"));
        assert_eq!(
            (stored.shape, stored.text.as_deref()),
            (None, Some(long.as_str()))
        );
    }

    #[test]
    fn values_inside_other_values_still_decode_exactly() {
        let answer = r#"{"x":"S","y":"\"S\"","z":"SS"}"#;
        let values = AnswerValues {
            own: ["S", "SS", "\"S\""],
            declaration: ["S"; 7],
        };
        let stored = encode(answer, &values);
        assert_eq!(decode(&stored.shape.unwrap(), &values), answer);
    }

    #[test]
    fn an_endpoint_whose_every_answer_differs_stops_adding_shapes() {
        let connection = Connection::open_in_memory().unwrap();
        connection
            .execute_batch(
                "CREATE TABLE texts(id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);
                 CREATE TABLE shapes(id INTEGER PRIMARY KEY, shape TEXT NOT NULL UNIQUE);
                 INSERT INTO shapes(id, shape) VALUES (7, 'known shape');",
            )
            .unwrap();
        let mut texts = Texts::default();
        assert_eq!(texts.shape_id(&connection, "new shape").unwrap(), Some(8));
        // As many shapes as allowed (codes and messages do not count).
        connection
            .execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
                 INSERT INTO shapes(shape) SELECT 'shape ' || i FROM n",
                params![MOST_SHAPES - 2],
            )
            .unwrap();
        for n in 0..100 {
            assert!(
                texts
                    .id(&connection, &format!("message {n}"))
                    .unwrap()
                    .is_some()
            );
        }
        let mut texts = Texts::default();
        assert_eq!(texts.shape_id(&connection, "another shape").unwrap(), None);
        assert_eq!(
            texts.shape_id(&connection, "known shape").unwrap(),
            Some(7),
            "a shape already there is still used"
        );
        assert_eq!(texts.id(&connection, "").unwrap(), None);
        // What a writer remembers stays bounded.
        for n in 0..(MOST_REMEMBERED + 10) {
            texts.id(&connection, &format!("text {n}")).unwrap();
        }
        assert!(texts.ids.len() <= MOST_REMEMBERED);
    }
}
