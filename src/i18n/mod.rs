//! The catalogue of what people read, in English and Simplified Chinese,
//! by area. An area is a struct with one field per text; `words!` writes
//! each text's two languages side by side, so that a text cannot exist in
//! one language only (it would not compile), and [`every_text`] lists them
//! all for the test that each is really said in both.
//!
//! The areas: the rows' messages and what each rejection code means
//! ([`rows`]), the report's words ([`report`]), the page's ([`page`]).

pub mod fields;
pub mod page;
pub mod progress;
pub mod report;
pub mod result_codes;
pub mod rows;
pub mod upload;

use serde::Deserialize;

pub use rows::{EarlierRun, REJECTION_CODES, RowMessage, describe_code, labelled};

/// The language of row messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Language {
    #[default]
    En,
    ZhCn,
}

impl Language {
    pub const ALL: [Language; 2] = [Language::En, Language::ZhCn];

    /// The language of a tag as configs and browsers write it: `en`,
    /// `en-US`, `zh-CN`, `zh-Hans`, `zh` (any case).
    pub fn from_tag(tag: &str) -> Option<Language> {
        let tag = tag.trim().to_ascii_lowercase();
        let primary = tag.split(['-', '_']).next().unwrap_or_default();
        match primary {
            "en" => Some(Language::En),
            // Traditional Chinese readers read Simplified more easily than English.
            "zh" => Some(Language::ZhCn),
            _ => None,
        }
    }

    /// The tag as the contract spells it.
    pub fn tag(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::ZhCn => "zh-CN",
        }
    }

    /// What separates several messages in one cell.
    pub fn list_separator(self) -> &'static str {
        match self {
            Language::En => "; ",
            Language::ZhCn => "；",
        }
    }

    pub fn pick(self, en: &'static str, zh: &'static str) -> &'static str {
        match self {
            Language::En => en,
            Language::ZhCn => zh,
        }
    }
}

impl TryFrom<String> for Language {
    type Error = String;

    fn try_from(tag: String) -> Result<Language, String> {
        Language::from_tag(&tag)
            .ok_or_else(|| format!("language \"{tag}\" is not offered; use \"en\" or \"zh-CN\""))
    }
}

/// Defines an area's texts: `words! { Name { field: "English", "中文"; } }`
/// gives `Name::of(language)` and `Name::pairs()`.
macro_rules! words {
    ($(#[$doc:meta])* $name:ident { $($(#[$field_doc:meta])* $field:ident: $en:expr, $zh:expr;)* }) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name {
            $($(#[$field_doc])* pub $field: &'static str,)*
        }

        impl $name {
            const EN: $name = $name { $($field: $en,)* };
            const ZH: $name = $name { $($field: $zh,)* };

            /// The texts in `language`.
            pub fn of(language: $crate::i18n::Language) -> &'static $name {
                match language {
                    $crate::i18n::Language::En => &Self::EN,
                    $crate::i18n::Language::ZhCn => &Self::ZH,
                }
            }

            /// Every text: its name, English, Chinese.
            pub fn pairs() -> Vec<(&'static str, &'static str, &'static str)> {
                vec![$((stringify!($field), $en, $zh),)*]
            }
        }
    };
}
pub(crate) use words;

/// Every text of every area as (area.name, English, Chinese).
pub fn every_text() -> Vec<(String, &'static str, &'static str)> {
    let areas = [
        ("page", page::PageWords::pairs()),
        ("fields", fields::FieldWords::pairs()),
        ("report", report::ReportWords::pairs()),
        ("rows", rows::REJECTION_CODES.to_vec()),
    ];
    areas
        .into_iter()
        .flat_map(|(area, texts)| {
            texts
                .into_iter()
                .map(move |(name, en, zh)| (format!("{area}.{name}"), en, zh))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_is_said_in_both_languages() {
        for (name, en, zh) in every_text() {
            assert!(!en.trim().is_empty(), "{name}: no English");
            assert!(!zh.trim().is_empty(), "{name}: no Chinese");
            // Texts that are the same in both (symbols) are the exception.
            if en.chars().any(|c| c.is_ascii_alphabetic()) {
                assert_ne!(en, zh, "{name}: the Chinese is the English");
                assert!(
                    zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                    "{name}: no Chinese in {zh:?}"
                );
            }
        }
    }
}
