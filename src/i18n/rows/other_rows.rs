//! Other rows of the same input, and earlier runs the ledger knows — the
//! messages, in both languages.

use std::fmt::Write;

use super::RowMessage;
use crate::i18n::Language;

impl RowMessage {
    /// Other rows of this input, and earlier runs the ledger knows.
    pub(super) fn write_other_rows(
        &self,
        out: &mut impl Write,
        language: Language,
    ) -> std::fmt::Result {
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
