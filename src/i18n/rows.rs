//! The messages about rows, in English and Simplified Chinese
//! (`[output] language`), and what each rejection code means. Validation records what is wrong as a
//! [`RowMessage`] with its parameters; the text is made only where a person
//! reads it — `rejected.csv`, `rejected.xlsx`, the end-of-run table — in the
//! language asked for. Codes stay as they are spelled, in every language.

use std::fmt::Write;

use super::Language;

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

/// The first character of a value that starts like a formula, as a
/// message names it (a tab or carriage return has no visible form).
fn formula_character(first: char, language: Language) -> String {
    match first {
        '\t' => language.pick("a tab", "制表符").to_owned(),
        '\r' => language.pick("a carriage return", "回车符").to_owned(),
        other => match language {
            Language::En => format!("\"{other}\""),
            Language::ZhCn => format!("“{other}”"),
        },
    }
}

/// What a rejection code means, in a few words; the code itself when the
/// catalogue does not know it.
pub fn describe_code(code: &str, language: Language) -> &str {
    REJECTION_CODES
        .iter()
        .find(|(known, _, _)| *known == code)
        .map_or(code, |&(_, en, zh)| language.pick(en, zh))
}

/// What is wrong with a row or one of its fields, with what the text needs.
/// Messages never carry a certificate number: it is personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowMessage {
    /// A CSV row over 1 MB or 16,384 fields: not read, so no value of it
    /// is known.
    RowTooLarge {
        too_many_fields: bool,
    },
    FieldCount {
        fields: usize,
        header: usize,
    },
    /// `column_missing`: the input has no column for the field at all.
    Required {
        column_missing: bool,
    },
    TooLong {
        length: usize,
        max: usize,
    },
    RegionNotCn {
        value: String,
    },
    CurrencyNotCny {
        value: String,
    },
    CustomsCodeNotAccepted {
        code: String,
        accepted: String,
    },
    AmountNotFen {
        text: String,
        looks_like_yuan: bool,
    },
    AmountNotYuan {
        text: String,
    },
    AmountTooManyDecimals {
        text: String,
    },
    AmountTooLarge {
        text: String,
    },
    AmountZero {
        yuan: bool,
    },
    IsSplitInvalid {
        value: String,
    },
    RequiredWhenSplit,
    CertificateTypeInvalid {
        value: String,
    },
    CertificateNoShape {
        characters: usize,
    },
    CertificateNoCheckCharacter,
    FullNameRequired,
    DateInvalid {
        value: String,
    },
    IdStoredAsNumber {
        digits: usize,
    },
    IdInScientificNotation {
        text: String,
    },
    CellError {
        text: String,
    },
    /// `cell`: its A1 reference, when known.
    FormulaWithoutValue {
        cell: Option<String>,
    },
    /// An ID or name that begins with `=`, `+`, `-`, `@`, a tab or a
    /// carriage return (or `'` and one of them): a spreadsheet would run it.
    StartsLikeFormula {
        first: char,
    },
    DuplicateRow {
        first_row: u64,
        request_id: String,
    },
    RequestIdReused {
        first_row: u64,
        request_id: String,
    },
    OrderAlreadyDeclared {
        first_row: u64,
        order_id: String,
        customs_code: String,
    },
    /// The ledger holds an S for this ID with a body that differs only in
    /// what a retransmission may change, and the window has not passed.
    RetransmissionTooEarly {
        earlier: Box<EarlierRun>,
        allowed_from: String,
    },
    /// The ledger holds an S for this ID with another difference.
    ChangedAfterDeclaration {
        earlier: Box<EarlierRun>,
    },
    /// The ledger holds an S for this order at this customs under
    /// another ID.
    OrderDeclaredEarlier {
        earlier: Box<EarlierRun>,
        order_id: String,
        customs_code: String,
    },
}

/// A declaration of an earlier run, as messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlierRun {
    pub request_id: String,
    /// The run's out folder.
    pub run: String,
    pub row: u64,
    /// When, as a person reads it.
    pub at: String,
}

impl RowMessage {
    /// The stable code, one of [`REJECTION_CODES`].
    pub fn code(&self) -> &'static str {
        use RowMessage::*;
        match self {
            RowTooLarge { .. } => "ROW_TOO_LARGE",
            FieldCount { .. } => "FIELD_COUNT",
            Required { .. } => "REQUIRED",
            TooLong { .. } => "TOO_LONG",
            RegionNotCn { .. } => "REGION_NOT_CN",
            CurrencyNotCny { .. } => "CURRENCY_NOT_CNY",
            CustomsCodeNotAccepted { .. } => "CUSTOMS_CODE_NOT_ACCEPTED",
            AmountNotFen { .. }
            | AmountNotYuan { .. }
            | AmountTooManyDecimals { .. }
            | AmountTooLarge { .. }
            | AmountZero { .. } => "AMOUNT_INVALID",
            IsSplitInvalid { .. } => "IS_SPLIT_INVALID",
            RequiredWhenSplit => "REQUIRED_WHEN_SPLIT",
            CertificateTypeInvalid { .. } => "CERTIFICATE_TYPE_INVALID",
            CertificateNoShape { .. } | CertificateNoCheckCharacter => "CERTIFICATE_NO_INVALID",
            FullNameRequired => "FULL_NAME_REQUIRED",
            DateInvalid { .. } => "DATE_INVALID",
            IdStoredAsNumber { .. } => "ID_STORED_AS_NUMBER",
            IdInScientificNotation { .. } => "ID_IN_SCIENTIFIC_NOTATION",
            CellError { .. } => "CELL_ERROR",
            FormulaWithoutValue { .. } => "FORMULA_WITHOUT_VALUE",
            StartsLikeFormula { .. } => "STARTS_LIKE_FORMULA",
            DuplicateRow { .. } => "DUPLICATE_ROW",
            RequestIdReused { .. } => "REQUEST_ID_REUSED",
            OrderAlreadyDeclared { .. } => "ORDER_ALREADY_DECLARED",
            RetransmissionTooEarly { .. } => "RETRANSMISSION_TOO_EARLY",
            ChangedAfterDeclaration { .. } => "CHANGED_AFTER_DECLARATION",
            OrderDeclaredEarlier { .. } => "ORDER_DECLARED_EARLIER",
        }
    }

    /// The message in `language`.
    pub fn text(&self, language: Language) -> String {
        let mut text = String::new();
        self.write(&mut text, language)
            .expect("writing to a String cannot fail");
        text
    }

    /// Writes the message; English and Chinese side by side, so that a
    /// message cannot be added in one language only.
    pub fn write(&self, out: &mut impl Write, language: Language) -> std::fmt::Result {
        use RowMessage::*;
        match self {
            RowTooLarge { .. }
            | FieldCount { .. }
            | Required { .. }
            | StartsLikeFormula { .. }
            | TooLong { .. }
            | IdStoredAsNumber { .. }
            | IdInScientificNotation { .. }
            | CellError { .. }
            | FormulaWithoutValue { .. } => self.write_reading(out, language),
            RegionNotCn { .. }
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
            | DateInvalid { .. } => self.write_value(out, language),
            DuplicateRow { .. }
            | RequestIdReused { .. }
            | OrderAlreadyDeclared { .. }
            | RetransmissionTooEarly { .. }
            | ChangedAfterDeclaration { .. }
            | OrderDeclaredEarlier { .. } => self.write_other_rows(out, language),
        }
    }

    /// How the row and its cells were read: their shape, what a spreadsheet did to them.
    fn write_reading(&self, out: &mut impl Write, language: Language) -> std::fmt::Result {
        use Language::*;
        use RowMessage::*;
        match (self, language) {
            (RowTooLarge { too_many_fields }, En) => out.write_str(if *too_many_fields {
                "the row has more than 16,384 fields (Excel's columns), so it was not read and \
                 its values are not in this file; check the export's separators at this line"
            } else {
                "the row is longer than 1 MB, the most a row may hold, so it was not read and its \
                 values are not in this file; check the export at this line"
            }),
            (RowTooLarge { too_many_fields }, ZhCn) => out.write_str(if *too_many_fields {
                "该行超过 16,384 个字段（Excel 的列数上限），未被读取，本文件中也没有它的值；请检查导出文件此行的分隔符"
            } else {
                "该行超过 1 MB（每行的上限），未被读取，本文件中也没有它的值；请检查导出文件的这一行"
            }),
            (FieldCount { fields, header }, En) => write!(
                out,
                "the row has {fields} fields but the header has {header}; a value containing a \
                 comma must be in double quotes, or the columns shift"
            ),
            (FieldCount { fields, header }, ZhCn) => write!(
                out,
                "该行有 {fields} 个字段，但表头有 {header} 个；含逗号的值必须放在英文双引号中，否则各列会错位"
            ),
            (
                Required {
                    column_missing: false,
                },
                En,
            ) => {
                out.write_str("required, but the cell is empty and [defaults] has no value for it")
            }
            (
                Required {
                    column_missing: false,
                },
                ZhCn,
            ) => out.write_str("必填，但单元格为空，且 [defaults] 中没有它的默认值"),
            (
                Required {
                    column_missing: true,
                },
                En,
            ) => out.write_str(
                "required, but the input has no such column and [defaults] has no value",
            ),
            (
                Required {
                    column_missing: true,
                },
                ZhCn,
            ) => out.write_str("必填，但输入文件没有这一列，且 [defaults] 中没有默认值"),
            (StartsLikeFormula { first }, En) => write!(
                out,
                "begins with {}, which a spreadsheet runs as a formula when the file is opened \
                 (and Alipay+ would keep the value as given): remove that first character",
                formula_character(*first, En)
            ),
            (StartsLikeFormula { first }, ZhCn) => write!(
                out,
                "以{}开头，电子表格打开文件时会把它当作公式执行（Alipay+ 也会原样保存该值）：请删除开头的这个字符",
                formula_character(*first, ZhCn)
            ),
            (TooLong { length, max }, En) => write!(
                out,
                "is {length} characters long; the API allows at most {max}"
            ),
            (TooLong { length, max }, ZhCn) => {
                write!(out, "长度为 {length} 个字符，接口最多允许 {max} 个")
            }
            (IdStoredAsNumber { digits }, En) => write!(
                out,
                "the cell holds a number with {digits} digits, but a spreadsheet keeps only 15 \
                 significant digits, so this ID may already be corrupted; format the column as \
                 text and re-enter or re-export the IDs"
            ),
            (IdStoredAsNumber { digits }, ZhCn) => write!(
                out,
                "单元格中是一个 {digits} 位的数字，但电子表格只保留 15 位有效数字，此编号可能已经损坏；请把该列设为文本格式，重新输入或重新导出编号"
            ),
            (IdInScientificNotation { text }, En) if text.is_empty() => out.write_str(
                "is an ID in scientific notation: the spreadsheet has already lost its digits; \
                 format the column as text and re-export",
            ),
            (IdInScientificNotation { text }, ZhCn) if text.is_empty() => out.write_str(
                "是科学计数法表示的编号：电子表格已丢失其中的数字；请把该列设为文本格式并重新导出",
            ),
            (IdInScientificNotation { text }, En) => write!(
                out,
                "\"{text}\" is an ID in scientific notation: the spreadsheet has already lost its \
                 digits; format the column as text and re-export"
            ),
            (IdInScientificNotation { text }, ZhCn) => write!(
                out,
                "“{text}”是科学计数法表示的编号：电子表格已丢失其中的数字；请把该列设为文本格式并重新导出"
            ),
            (CellError { text }, En) => write!(
                out,
                "the cell holds the spreadsheet error {text}; fix the formula or type the value"
            ),
            (CellError { text }, ZhCn) => {
                write!(out, "单元格中是表格错误值 {text}；请修正公式或直接输入数值")
            }
            (FormulaWithoutValue { cell }, En) => {
                if let Some(cell) = cell {
                    write!(out, "cell {cell}: ")?;
                }
                out.write_str(
                    "the cell holds a formula whose value was never saved (the file was written \
                     by a program that does not calculate formulas); open the file in Excel or \
                     LibreOffice and save it, so that the values are stored",
                )
            }
            (FormulaWithoutValue { cell }, ZhCn) => {
                if let Some(cell) = cell {
                    write!(out, "单元格 {cell}：")?;
                }
                out.write_str(
                    "单元格中的公式从未保存计算结果（文件由不计算公式的程序生成）；请用 Excel 或 LibreOffice 打开并保存该文件，以保存计算结果",
                )
            }
            _ => unreachable!("{self:?} is written by another group"),
        }
    }

    /// The spec's rules on one value.
    fn write_value(&self, out: &mut impl Write, language: Language) -> std::fmt::Result {
        use Language::*;
        use RowMessage::*;
        match (self, language) {
            (RegionNotCn { value }, En) => write!(
                out,
                "must be CN (only declarations to Chinese customs are made), not \"{value}\""
            ),
            (RegionNotCn { value }, ZhCn) => {
                write!(out, "必须为 CN（只向中国海关申报），而不是“{value}”")
            }
            (CurrencyNotCny { value }, En) => write!(out, "must be CNY, not \"{value}\""),
            (CurrencyNotCny { value }, ZhCn) => write!(out, "必须为 CNY，而不是“{value}”"),
            (CustomsCodeNotAccepted { code, accepted }, En) => write!(
                out,
                "\"{code}\" is not an accepted customs code ({accepted}); declare to ZONGSHU for \
                 districts not in this list (Hangzhou, Guangzhou, Tianjin, …)"
            ),
            (CustomsCodeNotAccepted { code, accepted }, ZhCn) => write!(
                out,
                "“{code}”不是可申报的海关编码（{accepted}）；不在此列表中的关区（杭州、广州、天津等）请申报到 ZONGSHU"
            ),
            (
                AmountNotFen {
                    text,
                    looks_like_yuan,
                },
                En,
            ) => {
                write!(
                    out,
                    "\"{text}\" is not a whole number of fen (digits only, e.g. 1234 for ¥12.34)"
                )?;
                if *looks_like_yuan {
                    out.write_str("; it looks like yuan: set [input] amount_unit = \"yuan\"")?;
                }
                Ok(())
            }
            (
                AmountNotFen {
                    text,
                    looks_like_yuan,
                },
                ZhCn,
            ) => {
                write!(
                    out,
                    "“{text}”不是以分为单位的整数（只能是数字，例如 ¥12.34 写作 1234）"
                )?;
                if *looks_like_yuan {
                    out.write_str("；它看起来以元为单位：请设置 [input] amount_unit = \"yuan\"")?;
                }
                Ok(())
            }
            (AmountNotYuan { text }, En) => write!(
                out,
                "\"{text}\" is not an amount in yuan (e.g. 12.34, ¥1,234.50, 1234.5元, RMB 12.00; \
                 at most two decimal places)"
            ),
            (AmountNotYuan { text }, ZhCn) => write!(
                out,
                "“{text}”不是以元为单位的金额（例如 12.34、¥1,234.50、1234.5元、RMB 12.00；最多两位小数）"
            ),
            (AmountTooManyDecimals { text }, En) => write!(
                out,
                "\"{text}\" has more than two decimal places; an amount in yuan is exact to the \
                 fen (where the sheet shows fewer, a cell format hides them: round the value in \
                 the sheet, e.g. =ROUND(A2,2))"
            ),
            (AmountTooManyDecimals { text }, ZhCn) => write!(
                out,
                "“{text}”超过两位小数；以元为单位的金额精确到分（表格中显示的位数更少时，是单元格格式隐藏了多余的小数：请在表格中取整，例如 =ROUND(A2,2)）"
            ),
            (AmountTooLarge { text }, En) => write!(out, "\"{text}\" is too large for an amount"),
            (AmountTooLarge { text }, ZhCn) => write!(out, "“{text}”超出了金额的上限"),
            (AmountZero { yuan: false }, En) => out.write_str("the amount must be at least 1 fen"),
            (AmountZero { yuan: false }, ZhCn) => out.write_str("金额至少为 1 分"),
            (AmountZero { yuan: true }, En) => out.write_str("the amount must be at least ¥0.01"),
            (AmountZero { yuan: true }, ZhCn) => out.write_str("金额至少为 ¥0.01"),
            (IsSplitInvalid { value }, En) => write!(
                out,
                "\"{value}\" is not a yes/no value; use true or false (1/0, 是/否 and Y/N are \
                 accepted too)"
            ),
            (IsSplitInvalid { value }, ZhCn) => write!(
                out,
                "“{value}”不是“是/否”值；请填写 true 或 false（也接受 1/0、是/否 和 Y/N）"
            ),
            (RequiredWhenSplit, En) => out.write_str(
                "required when isSplit is true: a split order is declared under its \
                 referenceOrderId",
            ),
            (RequiredWhenSplit, ZhCn) => {
                out.write_str("isSplit 为 true 时必填：拆单按其 referenceOrderId 申报")
            }
            (CertificateTypeInvalid { value }, En) => write!(
                out,
                "must be ID_CARD (the only type the API accepts), not \"{value}\""
            ),
            (CertificateTypeInvalid { value }, ZhCn) => write!(
                out,
                "必须为 ID_CARD（接口唯一接受的证件类型），而不是“{value}”"
            ),
            (CertificateNoShape { characters }, En) => write!(
                out,
                "not an 18-character resident ID (17 digits and a check digit or X; this one has \
                 {characters} characters)"
            ),
            (CertificateNoShape { characters }, ZhCn) => write!(
                out,
                "不是 18 位的居民身份证号码（17 位数字加一位校验码，校验码为数字或 X；此号码有 {characters} 个字符）"
            ),
            (CertificateNoCheckCharacter, En) => out.write_str(
                "the check character does not match: the ID has a typo; correct it from the \
                 buyer's ID card",
            ),
            (CertificateNoCheckCharacter, ZhCn) => {
                out.write_str("校验码不符：号码有误，请按买家的身份证更正")
            }
            (FullNameRequired, En) => {
                out.write_str("required when a first, middle or last name is given")
            }
            (FullNameRequired, ZhCn) => out.write_str("填写了名、中间名或姓时必填"),
            (DateInvalid { value }, En) => write!(
                out,
                "\"{value}\" is not a date-time; use ISO 8601 such as 2019-11-27T12:01:01+08:00 \
                 or 2019-11-27 (2019年11月27日, 2019/11/27 and 2019.11.27 are read too)"
            ),
            (DateInvalid { value }, ZhCn) => write!(
                out,
                "“{value}”不是日期时间；请使用 ISO 8601 格式，例如 2019-11-27T12:01:01+08:00 或 2019-11-27（也能识别 2019年11月27日、2019/11/27 和 2019.11.27）"
            ),
            _ => unreachable!("{self:?} is written by another group"),
        }
    }

    /// Other rows of this input, and earlier runs the ledger knows.
    fn write_other_rows(&self, out: &mut impl Write, language: Language) -> std::fmt::Result {
        use Language::*;
        use RowMessage::*;
        match (self, language) {
            (
                DuplicateRow {
                    first_row,
                    request_id,
                },
                En,
            ) => write!(
                out,
                "duplicate of row {first_row}: same customsDeclarationRequestId \"{request_id}\" \
                 and identical content; the declaration is made once, from row {first_row}"
            ),
            (
                DuplicateRow {
                    first_row,
                    request_id,
                },
                ZhCn,
            ) => write!(
                out,
                "与第 {first_row} 行重复：customsDeclarationRequestId“{request_id}”相同且内容一致；只按第 {first_row} 行申报一次"
            ),
            (
                RequestIdReused {
                    first_row,
                    request_id,
                },
                En,
            ) => write!(
                out,
                "\"{request_id}\" is already used by row {first_row} with different content; \
                 give each declaration its own customsDeclarationRequestId (the API would answer \
                 REPEAT_REQ_INCONSISTENT)"
            ),
            (
                RequestIdReused {
                    first_row,
                    request_id,
                },
                ZhCn,
            ) => write!(
                out,
                "“{request_id}”已被第 {first_row} 行使用，且内容不同；每笔申报须有自己的 customsDeclarationRequestId（否则接口会返回 REPEAT_REQ_INCONSISTENT）"
            ),
            (
                OrderAlreadyDeclared {
                    first_row,
                    order_id,
                    customs_code,
                },
                En,
            ) => write!(
                out,
                "order \"{order_id}\" is already declared at customs {customs_code} by row \
                 {first_row} under another customsDeclarationRequestId; an order is declared once \
                 per customs (the API would answer DUPLICATED_DECLARATION)"
            ),
            (
                OrderAlreadyDeclared {
                    first_row,
                    order_id,
                    customs_code,
                },
                ZhCn,
            ) => write!(
                out,
                "订单“{order_id}”已由第 {first_row} 行以另一个 customsDeclarationRequestId 向海关 {customs_code} 申报；同一订单在同一海关只申报一次（否则接口会返回 DUPLICATED_DECLARATION）"
            ),
            (
                RetransmissionTooEarly {
                    earlier,
                    allowed_from,
                },
                En,
            ) => write!(
                out,
                "\"{}\" was declared (S) by the run in {} (row {}) at {}, and this row changes \
                 only what a retransmission may change; it may be sent again from {allowed_from} \
                 ([run] retransmit_wait_secs after the last call)",
                earlier.request_id, earlier.run, earlier.row, earlier.at
            ),
            (
                RetransmissionTooEarly {
                    earlier,
                    allowed_from,
                },
                ZhCn,
            ) => write!(
                out,
                "“{}”已由 {} 中的运行（第 {} 行）于 {} 申报成功（S），本行只修改了重新申报允许修改的字段；可于 {allowed_from} 起重新申报（距上次调用 [run] retransmit_wait_secs 之后）",
                earlier.request_id, earlier.run, earlier.row, earlier.at
            ),
            (ChangedAfterDeclaration { earlier }, En) => write!(
                out,
                "\"{}\" was declared (S) by the run in {} (row {}) at {} with other content; \
                 only merchantCustomsCode, merchantCustomsName, customsCode and the amount may \
                 change under a declared ID (the API would answer REPEAT_REQ_INCONSISTENT): \
                 declare the change under a new customsDeclarationRequestId",
                earlier.request_id, earlier.run, earlier.row, earlier.at
            ),
            (ChangedAfterDeclaration { earlier }, ZhCn) => write!(
                out,
                "“{}”已由 {} 中的运行（第 {} 行）于 {} 以不同内容申报成功（S）；已申报的请求号下只能修改 merchantCustomsCode、merchantCustomsName、customsCode 和金额（否则接口会返回 REPEAT_REQ_INCONSISTENT）：请用新的 customsDeclarationRequestId 申报",
                earlier.request_id, earlier.run, earlier.row, earlier.at
            ),
            (
                OrderDeclaredEarlier {
                    earlier,
                    order_id,
                    customs_code,
                },
                En,
            ) => write!(
                out,
                "order \"{order_id}\" is already declared at customs {customs_code} under \
                 customsDeclarationRequestId \"{}\" by the run in {} (row {}) at {}; an order is \
                 declared once per customs (the API would answer DUPLICATED_DECLARATION)",
                earlier.request_id, earlier.run, earlier.row, earlier.at
            ),
            (
                OrderDeclaredEarlier {
                    earlier,
                    order_id,
                    customs_code,
                },
                ZhCn,
            ) => write!(
                out,
                "订单“{order_id}”已由 {} 中的运行（第 {} 行）于 {} 以 customsDeclarationRequestId“{}”向海关 {customs_code} 申报；同一订单在同一海关只申报一次（否则接口会返回 DUPLICATED_DECLARATION）",
                earlier.run, earlier.row, earlier.at, earlier.request_id
            ),

            _ => unreachable!("{self:?} is written by another group"),
        }
    }
}

/// A field's label and its message as one text: `label: message`.
pub fn labelled(label: &str, message: &RowMessage, language: Language) -> String {
    let mut text = String::with_capacity(label.len() + 96);
    if !label.is_empty() {
        text.push_str(label);
        text.push_str(language.pick(": ", "："));
    }
    message
        .write(&mut text, language)
        .expect("writing to a String cannot fail");
    text
}

#[cfg(test)]
pub(crate) mod tests {
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
                !en.is_empty()
                    && !has_chinese(&en.replace(['是', '否', '年', '月', '日', '元'], "")),
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
}
