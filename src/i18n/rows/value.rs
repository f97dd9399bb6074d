//! The spec's rules on one value — the messages, in both languages.

use std::fmt::Write;

use super::RowMessage;
use crate::i18n::Language;

impl RowMessage {
    /// The spec's rules on one value.
    pub(super) fn write_value(&self, out: &mut impl Write, language: Language) -> std::fmt::Result {
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
}
