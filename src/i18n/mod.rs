//! The catalogue of what people read, in English and Simplified Chinese,
//! by area. An area is a struct with one field per text; `words!` writes
//! each text's two languages side by side, so that a text cannot exist in
//! one language only (it would not compile), and [`every_text`] lists them
//! all for the test that each is really said in both.
//!
//! The rows' messages and the API's codes are in `crate::messages`; the
//! report's words in `crate::report::html`; the page's in [`page`].

pub mod page;

pub use crate::messages::Language;

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
    page::PageWords::pairs()
        .into_iter()
        .map(|(name, en, zh)| (format!("page.{name}"), en, zh))
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
