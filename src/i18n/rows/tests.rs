//! The catalogue of row messages checked: every message in both
//! languages, with its parameters.

use super::*;

/// One message of every kind. The match below stops compiling when a
/// kind is added, until it is added here too.
pub(crate) fn one_of_each() -> Vec<RowMessage> {
    use RowMessage::*;
    let text = || "X1".to_owned();
    let earlier = || EarlierRun {
        request_id: "D1".into(),
        run: "/data/night-1".into(),
        row: 7,
        at: "2026-11-25 10:00:00".into(),
    };
    let all = vec![
        RowTooLarge {
            too_many_fields: false,
        },
        RowTooLarge {
            too_many_fields: true,
        },
        FieldCount {
            fields: 3,
            header: 4,
        },
        Required {
            column_missing: false,
        },
        Required {
            column_missing: true,
        },
        TooLong {
            length: 70,
            max: 64,
        },
        RegionNotCn { value: text() },
        CurrencyNotCny { value: text() },
        CustomsCodeNotAccepted {
            code: text(),
            accepted: "ZONGSHU".into(),
        },
        AmountNotFen {
            text: text(),
            looks_like_yuan: false,
        },
        AmountNotFen {
            text: text(),
            looks_like_yuan: true,
        },
        AmountNotYuan { text: text() },
        AmountTooManyDecimals { text: text() },
        AmountTooLarge { text: text() },
        AmountZero { yuan: false },
        AmountZero { yuan: true },
        IsSplitInvalid { value: text() },
        RequiredWhenSplit,
        CertificateTypeInvalid { value: text() },
        CertificateNoShape { characters: 17 },
        CertificateNoCheckCharacter,
        FullNameRequired,
        DateInvalid { value: text() },
        IdStoredAsNumber { digits: 18 },
        IdInScientificNotation { text: text() },
        IdInScientificNotation {
            text: String::new(),
        },
        CellError {
            text: "#N/A".into(),
        },
        FormulaWithoutValue { cell: None },
        FormulaWithoutValue {
            cell: Some("F7".into()),
        },
        StartsLikeFormula { first: '=' },
        StartsLikeFormula { first: '\t' },
        DuplicateRow {
            first_row: 2,
            request_id: text(),
        },
        RequestIdReused {
            first_row: 2,
            request_id: text(),
        },
        OrderAlreadyDeclared {
            first_row: 2,
            order_id: text(),
            customs_code: "NINGBO".into(),
        },
        RetransmissionTooEarly {
            earlier: Box::new(earlier()),
            allowed_from: "2026-11-25 10:05:00".into(),
        },
        ChangedAfterDeclaration {
            earlier: Box::new(earlier()),
        },
        OrderDeclaredEarlier {
            earlier: Box::new(earlier()),
            order_id: text(),
            customs_code: "NINGBO".into(),
        },
    ];
    for message in &all {
        match message {
            RowTooLarge { .. }
            | FieldCount { .. }
            | Required { .. }
            | TooLong { .. }
            | RegionNotCn { .. }
            | CurrencyNotCny { .. }
            | CustomsCodeNotAccepted { .. }
            | AmountNotFen { .. }
            | AmountNotYuan { .. }
            | AmountTooManyDecimals { .. }
            | AmountTooLarge { .. }
            | AmountZero { .. }
            | IsSplitInvalid { .. }
            | RequiredWhenSplit
            | CertificateTypeInvalid { .. }
            | CertificateNoShape { .. }
            | CertificateNoCheckCharacter
            | FullNameRequired
            | DateInvalid { .. }
            | IdStoredAsNumber { .. }
            | IdInScientificNotation { .. }
            | CellError { .. }
            | FormulaWithoutValue { .. }
            | StartsLikeFormula { .. }
            | DuplicateRow { .. }
            | RequestIdReused { .. }
            | OrderAlreadyDeclared { .. }
            | RetransmissionTooEarly { .. }
            | ChangedAfterDeclaration { .. }
            | OrderDeclaredEarlier { .. } => {}
        }
    }
    all
}

fn has_chinese(text: &str) -> bool {
    text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

#[test]
fn every_rejection_code_has_both_languages() {
    for (code, en, zh) in REJECTION_CODES {
        assert!(!en.is_empty() && !has_chinese(en), "{code}: {en}");
        assert!(has_chinese(zh), "{code} has no Chinese description: {zh}");
        assert_eq!(describe_code(code, Language::En), en);
        assert_eq!(describe_code(code, Language::ZhCn), zh);
    }
    let messages = one_of_each();
    for (code, _, _) in REJECTION_CODES {
        assert!(
            messages.iter().any(|message| message.code() == code),
            "{code} has no message"
        );
    }
    for message in messages {
        let code = message.code();
        assert!(
            REJECTION_CODES.iter().any(|(known, _, _)| *known == code),
            "{code} is not in REJECTION_CODES"
        );
        let en = message.text(Language::En);
        let zh = message.text(Language::ZhCn);
        assert!(
            !en.is_empty() && !has_chinese(&en.replace(['是', '否', '年', '月', '日', '元'], "")),
            "{message:?}: {en}"
        );
        assert!(has_chinese(&zh), "{message:?} has no Chinese text: {zh}");
        assert_ne!(en, zh);
    }
}

#[test]
fn parameters_appear_in_both_languages() {
    let message = RowMessage::OrderAlreadyDeclared {
        first_row: 41,
        order_id: "PAY77".into(),
        customs_code: "NINGBO".into(),
    };
    for language in Language::ALL {
        let text = labelled("支付单号 (paymentRequestId)", &message, language);
        for part in [
            "支付单号 (paymentRequestId)",
            "41",
            "PAY77",
            "NINGBO",
            "DUPLICATED_DECLARATION",
        ] {
            assert!(text.contains(part), "{language:?}: {text}");
        }
    }
    assert!(
        labelled(
            "amount",
            &RowMessage::AmountZero { yuan: true },
            Language::ZhCn
        )
        .starts_with("amount：金额")
    );
    assert_eq!(
        labelled("", &RowMessage::RequiredWhenSplit, Language::En),
        RowMessage::RequiredWhenSplit.text(Language::En)
    );
}

#[test]
fn language_tags() {
    assert_eq!(Language::from_tag("zh-CN"), Some(Language::ZhCn));
    assert_eq!(Language::from_tag("zh_cn"), Some(Language::ZhCn));
    assert_eq!(Language::from_tag("zh-Hans"), Some(Language::ZhCn));
    assert_eq!(Language::from_tag("EN-us"), Some(Language::En));
    assert_eq!(Language::from_tag("fr"), None);
    assert!(
        Language::try_from("de".to_owned())
            .unwrap_err()
            .contains("zh-CN")
    );
    assert_eq!(
        describe_code("SOMETHING_NEW", Language::ZhCn),
        "SOMETHING_NEW"
    );
}
