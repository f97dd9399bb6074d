//! The single-value rules of the declare spec, as pure functions that
//! normalise a trimmed cell or say what is wrong with it: amounts (fen or
//! yuan, never through floating point), `isSplit` words, ISO 8601
//! date-times, and the GB 11643 resident ID check character.

use std::borrow::Cow;
use std::sync::LazyLock;

use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};

use crate::i18n::RowMessage;

/// Full-width ASCII forms (ＮＩＮＧＢＯ, １２３, ２０２０－０１－０１) and the
/// ideographic space read as their half-width forms; other text is
/// borrowed unchanged.
pub fn half_width(text: Cow<'_, str>) -> Cow<'_, str> {
    // Every full-width form starts with byte 0xEF or 0xE3 in UTF-8; most
    // values are ASCII, which is quicker to tell.
    if text.is_ascii() || memchr::memchr2(0xEF, 0xE3, text.as_bytes()).is_none() {
        return text;
    }
    let converted: String = text
        .chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            other => other,
        })
        .collect();
    if converted == text {
        text
    } else {
        Cow::Owned(converted.trim().to_owned())
    }
}

/// 长期 or 永久 in an expiry-date column: a long-term ID card.
pub fn is_long_term(text: &str) -> bool {
    matches!(text.trim(), "长期" | "長期" | "永久" | "长期有效")
}

/// Fen amount: a natural number ≥ 1, leading zeros dropped.
pub fn parse_fen(text: &str) -> Result<u64, RowMessage> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RowMessage::AmountNotFen {
            text: text.to_owned(),
            looks_like_yuan: text.contains('.') || text.contains(['¥', '￥']),
        });
    }
    let fen = text
        .parse::<u64>()
        .map_err(|_| RowMessage::AmountTooLarge {
            text: text.to_owned(),
        })?;
    if fen == 0 {
        return Err(RowMessage::AmountZero { yuan: false });
    }
    Ok(fen)
}

/// Yuan amount: an exact decimal with at most two places, optionally with
/// `¥`/`￥` and thousands separators, converted to fen in integers.
pub fn parse_yuan(text: &str) -> Result<u64, RowMessage> {
    let invalid = || RowMessage::AmountNotYuan {
        text: text.to_owned(),
    };
    let number = strip_currency(text);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if fraction.len() > 2 && fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RowMessage::AmountTooManyDecimals {
            text: text.to_owned(),
        });
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) || (whole.is_empty() && fraction.is_empty()) {
        return Err(invalid());
    }
    let digits = if whole.contains(',') {
        let mut groups = whole.split(',');
        let first = groups.next().unwrap_or_default();
        let well_grouped = (1..=3).contains(&first.len())
            && groups.all(|group| group.len() == 3)
            && whole.bytes().all(|b| b.is_ascii_digit() || b == b',');
        if !well_grouped {
            return Err(invalid());
        }
        whole.replace(',', "")
    } else {
        whole.to_owned()
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let too_large = || RowMessage::AmountTooLarge {
        text: text.to_owned(),
    };
    let yuan: u64 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| too_large())?
    };
    let cents: u64 = match fraction.len() {
        0 => 0,
        1 => u64::from(fraction.as_bytes()[0] - b'0') * 10,
        _ => fraction.parse().expect("two ASCII digits"),
    };
    let fen = yuan
        .checked_mul(100)
        .and_then(|f| f.checked_add(cents))
        .ok_or_else(too_large)?;
    if fen == 0 {
        return Err(RowMessage::AmountZero { yuan: true });
    }
    Ok(fen)
}

/// The number of a yuan amount without its currency: `¥`/`￥` or `RMB`/
/// `CNY` before it, `元` after it.
fn strip_currency(text: &str) -> &str {
    let mut number = text.trim();
    if let Some(rest) = number.strip_prefix(['¥', '￥']) {
        number = rest.trim_start();
    } else if let Some(prefix) = number.get(..3)
        && (prefix.eq_ignore_ascii_case("RMB") || prefix.eq_ignore_ascii_case("CNY"))
    {
        number = number[3..].trim_start();
    }
    number.strip_suffix('元').map_or(number, str::trim_end)
}

/// `isSplit`: true/false in any case, 1/0, 是/否, Y/N, yes/no.
pub fn parse_is_split(text: &str) -> Result<bool, RowMessage> {
    let is = |word: &str| text.eq_ignore_ascii_case(word);
    if ["true", "1", "是", "y", "yes"].into_iter().any(is) {
        Ok(true)
    } else if ["false", "0", "否", "n", "no"].into_iter().any(is) {
        Ok(false)
    } else {
        Err(RowMessage::IsSplitInvalid {
            value: text.to_owned(),
        })
    }
}

/// Date-time layouts accepted, parsed once: chrono re-reads a format
/// string on every call otherwise, which dominated validation time.
struct Layouts {
    with_offset: Vec<Vec<Item<'static>>>,
    naive_datetime: Vec<Vec<Item<'static>>>,
    date: Vec<Vec<Item<'static>>>,
    output: Vec<Item<'static>>,
}

fn compile(patterns: &[&str]) -> Vec<Vec<Item<'static>>> {
    patterns
        .iter()
        .map(|pattern| {
            StrftimeItems::new(pattern)
                .parse_to_owned()
                .expect("layouts are valid strftime patterns")
        })
        .collect()
}

static LAYOUTS: LazyLock<Layouts> = LazyLock::new(|| Layouts {
    with_offset: compile(&[
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
    ]),
    naive_datetime: compile(&[
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
        "%Y/%m/%d %H:%M:%S",
        "%Y/%m/%d %H:%M",
    ]),
    date: compile(&["%Y-%m-%d", "%Y/%m/%d"]),
    output: compile(&["%Y-%m-%dT%H:%M:%S%.f%:z"]).remove(0),
});

fn parsed_with(text: &str, layouts: &[Vec<Item<'static>>]) -> impl Iterator<Item = Parsed> {
    layouts.iter().filter_map(move |items| {
        let mut parsed = Parsed::new();
        chrono::format::parse(&mut parsed, text, items.iter()).ok()?;
        Some(parsed)
    })
}

/// China Standard Time, assumed for date-times given without an offset.
fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset")
}

/// An ISO 8601 date-time, normalised to `YYYY-MM-DDTHH:MM:SS[.fff]±hh:mm`.
/// Without an offset `+08:00` is assumed; a date alone is midnight.
pub fn parse_datetime(text: &str) -> Result<String, RowMessage> {
    parse_datetime_value(text).map(|value| value.to_text())
}

/// A date-time as [`parse_datetime`] normalises it, without building its
/// text in the common case: most ID card dates are plain days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateTimeValue<'a> {
    /// A `YYYY-MM-DD` day as given: midnight in Beijing.
    Midnight(&'a str),
    /// Any other accepted form, normalised.
    Normalised(String),
}

/// What follows a plain day in its normalised form.
const MIDNIGHT_IN_BEIJING: &str = "T00:00:00+08:00";

impl DateTimeValue<'_> {
    /// The normalised text, in two parts that run on.
    pub fn parts(&self) -> [&str; 2] {
        match self {
            DateTimeValue::Midnight(day) => [day, MIDNIGHT_IN_BEIJING],
            DateTimeValue::Normalised(text) => [text, ""],
        }
    }

    pub fn to_text(&self) -> String {
        self.parts().concat()
    }
}

/// [`parse_datetime`], allocating only for the forms that are not a plain
/// day.
pub fn parse_datetime_value(text: &str) -> Result<DateTimeValue<'_>, RowMessage> {
    if is_plain_date(text) {
        Ok(DateTimeValue::Midnight(text))
    } else {
        parse_any_datetime(text).map(DateTimeValue::Normalised)
    }
}

/// A plain day as the general parser would write it (the tests compare
/// the two).
#[cfg(test)]
fn plain_date(text: &str) -> Option<String> {
    is_plain_date(text).then(|| format!("{text}{MIDNIGHT_IN_BEIJING}"))
}

/// Whether `text` is the common `YYYY-MM-DD` form of a day that exists,
/// read with plain arithmetic rather than chrono's format parser: it then
/// means midnight in Beijing, exactly as `parse_any_datetime` writes it.
/// Anything else is left to that.
fn is_plain_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(at, b)| at == 4 || at == 7 || b.is_ascii_digit());
    if !shaped {
        return false;
    }
    let number = |range: std::ops::Range<usize>| text[range].parse::<u32>().ok();
    let day = || {
        let year = i32::try_from(number(0..4)?).ok()?;
        NaiveDate::from_ymd_opt(year, number(5..7)?, number(8..10)?)
    };
    day().is_some()
}

fn parse_any_datetime(text: &str) -> Result<String, RowMessage> {
    let original = text;
    let written = chinese_date(text);
    let text = written.as_ref();
    let layouts = &*LAYOUTS;
    let output = |datetime: DateTime<FixedOffset>| {
        datetime
            .format_with_items(layouts.output.iter())
            .to_string()
    };
    // Every layout with a time of day has a colon; most ID card dates have
    // none, and skipping the time layouts for them halves the cost.
    let has_time = text.contains(':');
    if has_time
        && let Some(datetime) =
            parsed_with(text, &layouts.with_offset).find_map(|parsed| parsed.to_datetime().ok())
    {
        return Ok(output(datetime));
    }
    if let Some(utc) = text.strip_suffix('Z').or_else(|| text.strip_suffix('z'))
        && let Some(naive) = parse_naive(utc)
    {
        return Ok(output(naive.and_utc().fixed_offset()));
    }
    match parse_naive(text) {
        Some(naive) => Ok(output(
            naive
                .and_local_timezone(beijing())
                .single()
                .expect("a fixed offset has exactly one mapping"),
        )),
        None => Err(RowMessage::DateInvalid {
            value: original.to_owned(),
        }),
    }
}

/// The date part of `2020年1月1日`, `2020.01.01` or `2020/1/1` (with any
/// time after it) in the `2020-1-1` form the layouts read.
fn chinese_date(text: &str) -> Cow<'_, str> {
    let date_end = text.find([' ', 'T']).unwrap_or(text.len());
    let (date, time) = text.split_at(date_end);
    let chinese = date.contains('年');
    let dotted = !chinese && date.matches('.').count() == 2;
    if !chinese && !dotted {
        return Cow::Borrowed(text);
    }
    let date: String = date
        .trim_end_matches('日')
        .chars()
        .map(|c| {
            if matches!(c, '年' | '月' | '.') {
                '-'
            } else {
                c
            }
        })
        .collect();
    Cow::Owned(format!("{date}{}", time.trim_start_matches('日')))
}

fn parse_naive(text: &str) -> Option<NaiveDateTime> {
    let layouts = &*LAYOUTS;
    let time_layouts: &[_] = if text.contains(':') {
        &layouts.naive_datetime
    } else {
        &[]
    };
    parsed_with(text, time_layouts)
        .find_map(|parsed| parsed.to_naive_datetime_with_offset(0).ok())
        .or_else(|| {
            parsed_with(text, &layouts.date)
                .find_map(|parsed| parsed.to_naive_date().ok())
                .map(|date| date.and_time(NaiveTime::MIN))
        })
        .or_else(|| {
            // ISO 8601 basic format: 20191127.
            let basic = text.len() == 8 && text.bytes().all(|b| b.is_ascii_digit());
            basic
                .then(|| NaiveDate::parse_from_str(text, "%Y%m%d").ok())
                .flatten()
                .map(|date| date.and_time(NaiveTime::MIN))
        })
}

/// GB 11643 weights of the first 17 characters.
const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character for each value of the weighted sum mod 11.
const ID_CHECK: [u8; 11] = *b"10X98765432";

/// The check character of the first 17 digits of a resident ID.
pub fn id_check_char(first17: &[u8; 17]) -> u8 {
    let sum: u32 = first17
        .iter()
        .zip(ID_WEIGHTS)
        .map(|(digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    ID_CHECK[(sum % 11) as usize]
}

/// An 18-character resident ID with the right check character, upper-cased
/// (`x` → `X`). Messages never repeat the number: it is personal data.
pub fn check_resident_id(text: &str) -> Result<String, RowMessage> {
    resident_id(text).map(Cow::into_owned)
}

/// [`check_resident_id`], copying the number only to upper-case it.
pub fn resident_id(text: &str) -> Result<Cow<'_, str>, RowMessage> {
    // Only a lower-case check character `x` needs a copy.
    let upper = if text.bytes().any(|b| b.is_ascii_lowercase()) {
        Cow::Owned(text.to_ascii_uppercase())
    } else {
        Cow::Borrowed(text)
    };
    let bytes = upper.as_bytes();
    let shape_ok = bytes.len() == 18
        && bytes[..17].iter().all(u8::is_ascii_digit)
        && (bytes[17].is_ascii_digit() || bytes[17] == b'X');
    if !shape_ok {
        return Err(RowMessage::CertificateNoShape {
            characters: text.chars().count(),
        });
    }
    let first17: &[u8; 17] = bytes[..17].try_into().expect("length checked");
    if id_check_char(first17) != bytes[17] {
        return Err(RowMessage::CertificateNoCheckCharacter);
    }
    Ok(upper)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_date_reads_as_the_general_parser_reads_it() {
        for text in [
            "2015-03-01",
            "2035-12-31",
            "2024-02-29",
            "2000-01-01",
            "1949-10-01",
            "0001-01-01",
            "9999-12-31",
        ] {
            assert_eq!(plain_date(text), parse_any_datetime(text).ok(), "{text}");
        }
        // Not a day: left to the general parser, which refuses it.
        for text in ["2023-02-29", "2015-13-01", "2015-00-10", "2015-04-31"] {
            assert_eq!(plain_date(text), None, "{text}");
            assert!(parse_datetime(text).is_err(), "{text}");
        }
        // Other shapes are the general parser's.
        for text in [
            "2015-3-1",
            "2015/03/01",
            "20150301",
            "2015-03-01 ",
            "２０１５-03-01",
        ] {
            assert_eq!(plain_date(text), None, "{text}");
        }
        assert_eq!(
            parse_datetime("2015-3-1").ok(),
            parse_datetime("2015-03-01").ok()
        );
    }
    use crate::i18n::Language;

    #[test]
    fn fen_amounts_are_natural_numbers() {
        assert_eq!(parse_fen("100"), Ok(100));
        assert_eq!(parse_fen("007"), Ok(7));
        assert!(
            parse_fen("0")
                .unwrap_err()
                .text(Language::En)
                .contains("at least 1")
        );
        assert!(
            parse_fen("12.34")
                .unwrap_err()
                .text(Language::En)
                .contains("amount_unit = \"yuan\"")
        );
        assert!(parse_fen("-5").is_err());
        assert!(parse_fen("1e3").is_err());
        assert!(
            parse_fen("99999999999999999999")
                .unwrap_err()
                .text(Language::En)
                .contains("too large")
        );
    }

    #[test]
    fn yuan_amounts_convert_exactly() {
        assert_eq!(parse_yuan("12.34"), Ok(1234));
        assert_eq!(parse_yuan("12.3"), Ok(1230));
        assert_eq!(parse_yuan("12"), Ok(1200));
        assert_eq!(parse_yuan("0.01"), Ok(1));
        assert_eq!(parse_yuan(".5"), Ok(50));
        assert_eq!(parse_yuan("¥1,234.50"), Ok(123_450));
        assert_eq!(parse_yuan("￥ 1,234,567"), Ok(123_456_700));
        // 0.1 + 0.2 style traps: no float anywhere.
        assert_eq!(parse_yuan("1.10"), Ok(110));
        assert_eq!(parse_yuan("4.35"), Ok(435));
        assert!(
            parse_yuan("12.345")
                .unwrap_err()
                .text(Language::En)
                .contains("two decimal places")
        );
        assert!(
            parse_yuan("0")
                .unwrap_err()
                .text(Language::En)
                .contains("at least")
        );
        assert!(parse_yuan("0.00").is_err());
        for bad in [
            "1,23.00", "12,3456", ",123", "1.2.3", "-1", "abc", "1 000", "¥", ".",
        ] {
            assert!(parse_yuan(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_as_chinese_exports_write_them() {
        assert_eq!(half_width(Cow::Borrowed("ＮＩＮＧＢＯ")), "NINGBO");
        assert_eq!(half_width(Cow::Borrowed("１２３４．５")), "1234.5");
        assert_eq!(half_width(Cow::Borrowed("　Ｐ１　")), "P1");
        assert!(matches!(
            half_width(Cow::Borrowed("P1")),
            Cow::Borrowed("P1")
        ));
        assert_eq!(parse_yuan("1234.5元"), Ok(123_450));
        assert_eq!(parse_yuan("RMB 12.00"), Ok(1200));
        assert_eq!(parse_yuan("cny12"), Ok(1200));
        assert_eq!(parse_yuan("¥12 元"), Ok(1200));
        assert!(parse_yuan("RMB").is_err());
        assert!(
            parse_yuan("12.345")
                .unwrap_err()
                .text(Language::En)
                .contains("=ROUND(")
        );
        for (input, expected) in [
            ("2020年1月1日", "2020-01-01T00:00:00+08:00"),
            ("2020年12月31日 08:30", "2020-12-31T08:30:00+08:00"),
            ("2020/1/1", "2020-01-01T00:00:00+08:00"),
            ("2020.01.01", "2020-01-01T00:00:00+08:00"),
        ] {
            assert_eq!(parse_datetime(input).as_deref(), Ok(expected), "{input}");
        }
        assert!(parse_datetime("2020.01").is_err());
        assert!(is_long_term("长期") && is_long_term("永久") && !is_long_term("2030-01-01"));
    }

    #[test]
    fn is_split_words() {
        for yes in ["true", "TRUE", "True", "1", "是"] {
            assert_eq!(parse_is_split(yes), Ok(true), "{yes}");
        }
        for no in ["false", "FALSE", "0", "否"] {
            assert_eq!(parse_is_split(no), Ok(false), "{no}");
        }
        for (word, value) in [("Y", true), ("n", false), ("yes", true), ("No", false)] {
            assert_eq!(parse_is_split(word), Ok(value), "{word}");
        }
        assert!(parse_is_split("2").is_err());
    }

    #[test]
    fn datetimes_normalise_to_iso_8601_with_offset() {
        let cases = [
            ("2019-11-27T12:01:01+08:00", "2019-11-27T12:01:01+08:00"),
            ("2019-11-27T12:01:01+0000", "2019-11-27T12:01:01+00:00"),
            ("2019-11-27T04:01:01Z", "2019-11-27T04:01:01+00:00"),
            ("2019-11-27T12:01:01", "2019-11-27T12:01:01+08:00"),
            ("2019-11-27 12:01:01", "2019-11-27T12:01:01+08:00"),
            ("2019-11-27 12:01", "2019-11-27T12:01:00+08:00"),
            ("2019-11-27", "2019-11-27T00:00:00+08:00"),
            ("2019/11/27", "2019-11-27T00:00:00+08:00"),
            ("20191127", "2019-11-27T00:00:00+08:00"),
            (
                "2019-11-27T12:01:01.500+08:00",
                "2019-11-27T12:01:01.500+08:00",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_datetime(input).as_deref(), Ok(expected), "{input}");
        }
        for bad in [
            "2019-02-30",
            "27/11/2019",
            "yesterday",
            "2019-11-27T25:00:00",
            "1574827261",
        ] {
            assert!(parse_datetime(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resident_id_check_character() {
        assert_eq!(
            check_resident_id("11010519491231002X").as_deref(),
            Ok("11010519491231002X")
        );
        assert_eq!(
            check_resident_id("11010519491231002x").as_deref(),
            Ok("11010519491231002X")
        );
        assert!(
            check_resident_id("110105194912310021")
                .unwrap_err()
                .text(Language::En)
                .contains("check character")
        );
        assert!(
            check_resident_id("1101051949123100")
                .unwrap_err()
                .text(Language::En)
                .contains("18-character")
        );
        assert!(check_resident_id("11010519491231002Y").is_err());
        assert!(check_resident_id("A1010519491231002X").is_err());
        // Messages never carry the number.
        let message = check_resident_id("110105194912310021")
            .unwrap_err()
            .text(Language::En);
        assert!(!message.contains("110105"), "{message}");
    }
}

/// Property tests: amounts round-trip between yuan and fen in integers,
/// and the resident ID check accepts every valid ID and refuses every
/// single-character change of one.
#[cfg(test)]
pub(super) mod properties {
    use super::*;
    use crate::fuzzing::{check_amount_text, check_resident_id_text, yuan_text};
    use proptest::prelude::*;

    /// The largest amount whose fen count fits in a u64.
    const MAX_FEN: u64 = u64::MAX;

    /// `yuan` with thousands separators, e.g. 1234567 → `1,234,567`.
    fn grouped(yuan: u64) -> String {
        let digits = yuan.to_string();
        let mut out = String::new();
        for (n, digit) in digits.chars().enumerate() {
            if n > 0 && (digits.len() - n).is_multiple_of(3) {
                out.push(',');
            }
            out.push(digit);
        }
        out
    }

    /// A valid 18-character resident ID: 17 random digits and their
    /// check character.
    pub(in crate::validate) fn resident_id() -> impl Strategy<Value = String> {
        proptest::array::uniform17(b'0'..=b'9').prop_map(|first17| {
            let mut id = first17.to_vec();
            id.push(id_check_char(&first17));
            String::from_utf8(id).expect("ASCII digits")
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn fen_and_yuan_round_trip_exactly(fen in 1u64..=MAX_FEN) {
            prop_assert_eq!(parse_fen(&fen.to_string()), Ok(fen));
            prop_assert_eq!(parse_fen(&format!("000{fen}")), Ok(fen));
            let yuan = yuan_text(fen);
            prop_assert_eq!(parse_yuan(&yuan), Ok(fen));
            prop_assert_eq!(parse_yuan(&format!("¥{yuan}")), Ok(fen));
            let with_separators = format!("￥{}.{:02}", grouped(fen / 100), fen % 100);
            prop_assert_eq!(parse_yuan(&with_separators), Ok(fen));
            if fen % 10 == 0 {
                let one_place = format!("{}.{}", fen / 100, fen % 100 / 10);
                prop_assert_eq!(parse_yuan(&one_place), Ok(fen));
            }
            if fen % 100 == 0 {
                prop_assert_eq!(parse_yuan(&(fen / 100).to_string()), Ok(fen));
            }
        }

        #[test]
        fn amounts_beyond_a_u64_of_fen_are_refused_not_wrapped(extra in 1u64..1000) {
            let too_many = u128::from(MAX_FEN) + u128::from(extra);
            prop_assert!(parse_fen(&too_many.to_string()).is_err());
            let yuan = format!("{}.{:02}", too_many / 100, too_many % 100);
            prop_assert!(parse_yuan(&yuan).is_err());
        }

        #[test]
        fn amount_texts_agree_with_a_digit_by_digit_reading(
            text in "[¥￥]?[0-9,]{0,24}(\\.[0-9]{0,3})?"
        ) {
            check_amount_text(&text);
        }

        #[test]
        fn every_valid_id_is_accepted(text in resident_id()) {
            prop_assert_eq!(check_resident_id(&text), Ok(text.clone()));
            prop_assert_eq!(check_resident_id(&text.to_ascii_lowercase()), Ok(text.clone()));
            check_resident_id_text(&text);
        }

        #[test]
        fn every_single_character_change_is_refused(
            id in resident_id(),
            position in 0usize..18,
            replacement in prop::sample::select(b"0123456789Xx".to_vec()),
        ) {
            let mut changed = id.clone().into_bytes();
            changed[position] = replacement;
            prop_assume!(!changed.eq_ignore_ascii_case(id.as_bytes()));
            let text = String::from_utf8(changed).unwrap();
            prop_assert!(check_resident_id(&text).is_err(), "{} accepted", text);
        }
    }
}
