//! Every code a row can be rejected with, and what it means in a few
//! words in both languages, for the tables that count them.

use crate::i18n::Language;

/// Every code a row can be rejected with, and what it means in a few words
/// (English, Chinese), for tables that count them.
pub const REJECTION_CODES: [(&str, &str, &str); 25] = [
    ("FIELD_COUNT", "wrong number of fields", "字段数与表头不符"),
    ("ROW_TOO_LARGE", "row too large to read", "行过大，无法读取"),
    ("REQUIRED", "required value missing", "缺少必填值"),
    ("TOO_LONG", "value too long", "值过长"),
    ("REGION_NOT_CN", "region is not CN", "地区不是 CN"),
    ("CURRENCY_NOT_CNY", "currency is not CNY", "币种不是 CNY"),
    (
        "CUSTOMS_CODE_NOT_ACCEPTED",
        "customs code not accepted",
        "海关编码不在可申报范围内",
    ),
    ("AMOUNT_INVALID", "amount not valid", "金额无效"),
    (
        "IS_SPLIT_INVALID",
        "isSplit is not yes or no",
        "isSplit 不是“是/否”值",
    ),
    (
        "REQUIRED_WHEN_SPLIT",
        "split order without referenceOrderId",
        "拆单缺少 referenceOrderId",
    ),
    (
        "CERTIFICATE_TYPE_INVALID",
        "certificate type is not ID_CARD",
        "证件类型不是 ID_CARD",
    ),
    (
        "CERTIFICATE_NO_INVALID",
        "resident ID not valid",
        "身份证号码无效",
    ),
    ("FULL_NAME_REQUIRED", "full name missing", "缺少全名"),
    ("DATE_INVALID", "date not readable", "日期无法识别"),
    (
        "ID_STORED_AS_NUMBER",
        "ID stored as a number",
        "编号以数字形式存储",
    ),
    (
        "ID_IN_SCIENTIFIC_NOTATION",
        "ID in scientific notation",
        "编号为科学计数法",
    ),
    (
        "CELL_ERROR",
        "spreadsheet error in a cell",
        "单元格含表格错误值",
    ),
    (
        "FORMULA_WITHOUT_VALUE",
        "formula without a saved value",
        "公式没有保存的计算结果",
    ),
    (
        "STARTS_LIKE_FORMULA",
        "begins like a spreadsheet formula",
        "以电子表格公式字符开头",
    ),
    ("DUPLICATE_ROW", "duplicate row", "重复行"),
    (
        "REQUEST_ID_REUSED",
        "request ID used twice",
        "申报请求号被重复使用",
    ),
    (
        "ORDER_ALREADY_DECLARED",
        "order already declared",
        "订单已申报",
    ),
    (
        "RETRANSMISSION_TOO_EARLY",
        "changed row too early to retransmit",
        "修改后的行尚不能重新申报",
    ),
    (
        "CHANGED_AFTER_DECLARATION",
        "declared request changed",
        "已申报的请求被修改",
    ),
    (
        "ORDER_DECLARED_EARLIER",
        "order declared by an earlier run",
        "订单已在之前的运行中申报",
    ),
];

/// What a rejection code means, in a few words; the code itself when the
/// catalogue does not know it.
pub fn describe_code(code: &str, language: Language) -> &str {
    REJECTION_CODES
        .iter()
        .find(|(known, _, _)| *known == code)
        .map_or(code, |&(_, en, zh)| language.pick(en, zh))
}
