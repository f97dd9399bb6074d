//! `init`'s guesses: which header row an export has, which of its headers
//! is which field (canonical names, and the Chinese and English words ERP
//! exports use), whether amounts are in yuan or fen, and the commented
//! config that records it all. Pure functions over header and cell texts,
//! so that the command only reads the file and writes the config.

use crate::fields::Field;

/// The words exports use for each field, compared after `normalise`.
const SYNONYMS: [(Field, &[&str]); 18] = [
    (
        Field::PaymentRequestId,
        &[
            "支付单号",
            "支付流水号",
            "交易号",
            "支付交易号",
            "支付请求号",
            "支付订单号",
            "paymentid",
            "paymentrequestid",
            "paymentno",
        ],
    ),
    (
        Field::CustomsDeclarationRequestId,
        &[
            "报关流水号",
            "报关请求号",
            "申报单号",
            "报关单号",
            "申报流水号",
            "declarationid",
            "customsdeclarationrequestid",
            "declarationrequestid",
        ],
    ),
    (
        Field::CustomsCode,
        &[
            "海关",
            "海关代码",
            "关区",
            "海关编码",
            "申报海关",
            "customs",
            "customscode",
        ],
    ),
    (Field::Region, &["地区", "区域", "region"]),
    (
        Field::MerchantCustomsCode,
        &[
            "商户备案号",
            "商户海关备案号",
            "海关备案号",
            "备案号",
            "商户海关代码",
            "merchantcustomscode",
        ],
    ),
    (
        Field::MerchantCustomsName,
        &[
            "商户名称",
            "商户海关备案名称",
            "备案名称",
            "商户名",
            "merchantcustomsname",
            "merchantname",
        ],
    ),
    (
        Field::AmountValue,
        &[
            "申报金额",
            "报关金额",
            "订单金额",
            "金额",
            "amount",
            "declarationamount",
            "value",
        ],
    ),
    (Field::AmountCurrency, &["币种", "币制", "currency"]),
    (Field::IsSplit, &["是否拆单", "拆单", "split", "issplit"]),
    (
        Field::ReferenceOrderId,
        &[
            "子订单号",
            "拆单订单号",
            "参考订单号",
            "referenceorderid",
            "suborderid",
        ],
    ),
    (Field::CertificateType, &["证件类型", "certificatetype"]),
    (
        Field::CertificateNo,
        &[
            "身份证号",
            "证件号码",
            "身份证号码",
            "证件号",
            "订购人证件号",
            "idnumber",
            "certificateno",
        ],
    ),
    (
        Field::HolderFullName,
        &[
            "姓名",
            "购买人姓名",
            "订购人姓名",
            "订购人",
            "购买人",
            "买家姓名",
            "fullname",
            "buyername",
        ],
    ),
    (Field::HolderFirstName, &["名", "firstname"]),
    (Field::HolderMiddleName, &["middlename"]),
    (Field::HolderLastName, &["姓", "lastname"]),
    (
        Field::EffectiveDate,
        &["证件生效日期", "生效日期", "有效期起", "effectivedate"],
    ),
    (
        Field::ExpireDate,
        &[
            "证件失效日期",
            "失效日期",
            "有效期至",
            "证件有效期",
            "expiredate",
            "expirydate",
        ],
    ),
];

/// The unit a header names, if any: `申报金额(元)`, `金额（分）`.
fn unit_in(header: &str) -> Option<&'static str> {
    let inside = header
        .split(['(', '（'])
        .nth(1)
        .map(|rest| rest.trim_end_matches([')', '）']).trim())?;
    match inside {
        "元" | "yuan" | "CNY" | "RMB" => Some("yuan"),
        "分" | "fen" => Some("fen"),
        _ => None,
    }
}

/// A header as it is compared: no unit in brackets, no spaces or
/// punctuation, lower case.
fn normalise(header: &str) -> String {
    let without_unit = header.split(['(', '（']).next().unwrap_or(header);
    without_unit
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The field a header names, if it names one.
pub fn field_of(header: &str) -> Option<Field> {
    if let Some(field) = Field::from_name(header.trim()) {
        return Some(field);
    }
    let wanted = normalise(header);
    if wanted.is_empty() {
        return None;
    }
    SYNONYMS
        .iter()
        .find(|(_, words)| words.iter().any(|word| normalise(word) == wanted))
        .map(|(field, _)| *field)
}

/// Headers mapped to fields: each field at most once, each header at most
/// once (the first header that names a field takes it).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// (field, header) in field order.
    pub mapped: Vec<(Field, String)>,
    /// Headers that name a field another header took first.
    pub duplicates: Vec<(String, Field)>,
    /// Headers that name no field.
    pub unknown: Vec<String>,
    /// The unit a mapped amount header names.
    pub amount_unit_in_header: Option<&'static str>,
}

impl Mapping {
    pub fn of(headers: &[String]) -> Mapping {
        let mut mapping = Mapping::default();
        for header in headers.iter().map(|h| h.trim()).filter(|h| !h.is_empty()) {
            match field_of(header) {
                Some(field) if mapping.mapped.iter().any(|(f, _)| *f == field) => {
                    mapping.duplicates.push((header.to_owned(), field));
                }
                Some(field) => {
                    if field == Field::AmountValue {
                        mapping.amount_unit_in_header = unit_in(header);
                    }
                    mapping.mapped.push((field, header.to_owned()));
                }
                None => mapping.unknown.push(header.to_owned()),
            }
        }
        mapping.mapped.sort_by_key(|(field, _)| field.index());
        mapping
    }

    /// Required fields it maps: how header-like a row is.
    pub fn required_mapped(&self) -> usize {
        self.mapped
            .iter()
            .filter(|(field, _)| field.always_required())
            .count()
    }

    pub fn header_of(&self, field: Field) -> Option<&str> {
        self.mapped
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, header)| header.as_str())
    }

    /// Required fields with neither a column nor a value every row shares
    /// (region and currency have one).
    pub fn missing_required(&self) -> Vec<Field> {
        Field::ALL
            .into_iter()
            .filter(|field| field.always_required())
            .filter(|field| !matches!(field, Field::Region | Field::AmountCurrency))
            .filter(|field| self.header_of(*field).is_none())
            .collect()
    }
}

/// `yuan` when at least one amount in ten has decimals or a yuan sign,
/// else `fen`: a fen export with a stray `12.50` (a typo the validation
/// then catches) stays fen.
pub fn guess_amount_unit<'a>(amounts: impl IntoIterator<Item = &'a str>) -> &'static str {
    let (mut total, mut yuan) = (0usize, 0usize);
    for amount in amounts {
        let amount = amount.trim();
        total += 1;
        if amount.contains(['.', '¥', '￥', '元']) || amount.to_ascii_uppercase().starts_with("RMB")
        {
            yuan += 1;
        }
    }
    if yuan > 0 && yuan * 10 >= total {
        "yuan"
    } else {
        "fen"
    }
}

/// The commented config `init` writes.
pub fn config_text(
    input: &str,
    sheet: Option<&str>,
    header_row: u64,
    mapping: &Mapping,
    amount_unit: &str,
    unit_reason: &str,
) -> String {
    let quote = |text: &str| text.replace('\\', "\\\\").replace('"', "\\\"");
    let mut out = String::new();
    out.push_str(&format!(
        "# declare-batch configuration written by `declare-batch init` for {}.\n\
         # Check every line, then try it: declare-batch validate <export> --config <this file>\n\
         # config/example.toml in the project documents every key.\n\n",
        quote(input)
    ));
    out.push_str(
        "[api]\n\
         # \"sandbox\" declares to a sandbox inside the program: nothing is declared for real.\n\
         # To declare, set the Alipay+ base URL (https://...) and the keys below.\n\
         endpoint = \"sandbox\"\n\
         # client_id = \"YOUR_CLIENT_ID\"\n\
         # private_key = \"keys/client_private.pem\"     # declare-batch keygen keys\n\
         # alipay_public_key = \"keys/alipay_public.pem\"\n\n",
    );
    out.push_str("[input]\n");
    if let Some(sheet) = sheet {
        out.push_str(&format!("sheet = \"{}\"\n", quote(sheet)));
    }
    out.push_str(&format!(
        "# The header row found: row {header_row} (0 finds it again each time).\nheader_row = 0\n\
         # {unit_reason}\namount_unit = \"{amount_unit}\"\n\n"
    ));
    // Headers in Chinese: whoever fixes the rejected rows reads Chinese.
    let chinese_headers = mapping.mapped.iter().any(|(_, header)| {
        header
            .chars()
            .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
    });
    out.push_str(&format!(
        "[output]\n\
         # en | zh-CN: the language of the messages about rows (rejected.csv, rejected.xlsx,\n\
         # the table at the end of a run).\nlanguage = \"{}\"\n\n",
        if chinese_headers { "zh-CN" } else { "en" }
    ));
    out.push_str("[columns]\n");
    for (field, header) in &mapping.mapped {
        out.push_str(&format!("\"{}\" = \"{}\"\n", field.name(), quote(header)));
    }
    out.push('\n');
    out.push_str("[defaults]\n");
    let missing = mapping.missing_required();
    if missing.is_empty() {
        out.push_str("# Every required field has a column.\n");
    } else {
        out.push_str("# Required, but no column was found for them: map a header in [columns],\n# or give the value every row shares here.\n");
        for field in missing {
            out.push_str(&format!("# \"{}\" = \"\"\n", field.name()));
        }
    }
    if mapping.header_of(Field::CertificateNo).is_some()
        && mapping.header_of(Field::CertificateType).is_none()
    {
        out.push_str("\"buyerCertificate.certificateType\" = \"ID_CARD\"\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn erp_headers_map_to_fields_once_each() {
        let mapping = Mapping::of(&strings(&[
            "支付流水号",
            "申报单号",
            "关区",
            "商户备案号",
            "商户名称",
            "申报金额(元)",
            "是否拆单",
            "子订单号",
            "证件号码",
            "订购人姓名",
            "备注",
            "金额",
        ]));
        assert_eq!(
            mapping.header_of(Field::PaymentRequestId),
            Some("支付流水号")
        );
        assert_eq!(mapping.header_of(Field::CustomsCode), Some("关区"));
        assert_eq!(mapping.header_of(Field::AmountValue), Some("申报金额(元)"));
        assert_eq!(mapping.amount_unit_in_header, Some("yuan"));
        assert_eq!(mapping.header_of(Field::HolderFullName), Some("订购人姓名"));
        assert_eq!(
            mapping.duplicates,
            [("金额".to_owned(), Field::AmountValue)]
        );
        assert_eq!(mapping.unknown, ["备注"]);
        assert!(mapping.missing_required().is_empty());
        assert_eq!(field_of("customs.customsCode"), Some(Field::CustomsCode));
        assert_eq!(field_of("Payment ID"), Some(Field::PaymentRequestId));
        assert_eq!(unit_in("金额（分）"), Some("fen"));
    }

    #[test]
    fn amount_units_are_guessed_from_the_values() {
        assert_eq!(guess_amount_unit(["100", "2500"]), "fen");
        assert_eq!(guess_amount_unit(["100", "25.00"]), "yuan");
        assert_eq!(guess_amount_unit(["¥1,280"]), "yuan");
        let mostly_fen: Vec<&str> = std::iter::repeat_n("1200", 19).chain(["12.50"]).collect();
        assert_eq!(guess_amount_unit(mostly_fen), "fen");
    }

    #[test]
    fn the_config_parses_and_lists_what_is_missing() {
        let mapping = Mapping::of(&strings(&["支付单号", "金额", "身份证号"]));
        let text = config_text("a.csv", None, 3, &mapping, "yuan", "amounts have decimals");
        let config = crate::config::Config::parse(&text, std::path::Path::new("t.toml")).unwrap();
        assert_eq!(config.api.endpoint.as_deref(), Some("sandbox"));
        assert_eq!(config.input.amount_unit, crate::validate::AmountUnit::Yuan);
        assert_eq!(config.columns["paymentRequestId"], "支付单号");
        assert_eq!(
            config.output.language,
            crate::i18n::Language::ZhCn,
            "Chinese headers"
        );
        assert!(text.contains("# \"customs.customsCode\" = \"\""), "{text}");
        assert!(
            text.contains("\"buyerCertificate.certificateType\" = \"ID_CARD\""),
            "{text}"
        );
        let mapping = Mapping::of(&strings(&["paymentRequestId", "declarationAmount.value"]));
        let text = config_text("a.csv", None, 1, &mapping, "fen", "whole numbers");
        let config = crate::config::Config::parse(&text, std::path::Path::new("t.toml")).unwrap();
        assert_eq!(config.output.language, crate::i18n::Language::En);
    }
}
