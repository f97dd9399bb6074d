//! What Alipay+'s result codes (and the tool's own codes for rows it
//! could not settle) mean to a finance clerk, in both languages, with the
//! API's own text beside them: every code the declare spec names.

use super::Language;

/// (code, the API's own message, English, Chinese).
const RESULT_CODES: [(&str, &str, &str, &str); 27] = [
    ("SUCCESS", "Success", "declared", "申报成功"),
    (
        "ACCESS_DENIED",
        "Access is denied.",
        "access denied: ask Alipay+ support",
        "访问被拒绝：请联系 Alipay+ 技术支持排查",
    ),
    (
        "DECLARED_AMOUNT_EXCEED_LIMIT",
        "The accumulated declared amount exceeds the total transaction amount.",
        "the declared amounts add up to more than the payment: check the amount",
        "累计申报金额超过交易总金额：请核对申报金额",
    ),
    (
        "DUPLICATED_DECLARATION",
        "An order can only be declared once at the same customs.",
        "the order is already declared at this customs",
        "该订单已在同一海关申报过：同一订单在同一海关只能申报一次",
    ),
    (
        "INVALID_CLIENT",
        "The client is invalid.",
        "the client ID is not valid: ask IT to check the profile",
        "客户端无效：请让 IT 检查配置",
    ),
    (
        "INVALID_ORDER_STATUS",
        "The order status is invalid for this operation.",
        "the payment's status does not allow a declaration: check the payment",
        "支付订单状态不允许申报：请核对支付订单状态",
    ),
    (
        "INVALID_SIGNATURE",
        "The signature is invalid.",
        "the signature is not valid: ask IT to check the keys",
        "签名无效：请让 IT 检查密钥",
    ),
    (
        "KEY_NOT_FOUND",
        "The key is not found.",
        "the key is not known: ask IT to check the profile",
        "找不到密钥：请让 IT 检查配置",
    ),
    (
        "MEDIA_TYPE_NOT_ACCEPTABLE",
        "The server does not implement the media type that is acceptable to the client.",
        "the request's media type is not accepted: ask IT",
        "请求的媒体类型不被接受：请联系 IT",
    ),
    (
        "METHOD_NOT_SUPPORTED",
        "The server does not implement the requested HTTPS method.",
        "the request's method is not supported: ask IT",
        "不支持该请求方法：请联系 IT",
    ),
    (
        "NO_INTERFACE_DEF",
        "API is not defined.",
        "no such API: ask IT to check the endpoint",
        "接口未定义：请让 IT 检查接口地址",
    ),
    (
        "ORDER_NOT_EXIST",
        "The order doesn't exist.",
        "the payment does not exist: check paymentRequestId",
        "支付订单不存在：请核对 paymentRequestId",
    ),
    (
        "PARAM_ILLEGAL",
        "Illegal parameters. For example, non-numeric input, invalid date.",
        "a value is not valid (a number, a date): check the row",
        "参数不合法（例如非数字或日期无效）：请检查该行",
    ),
    (
        "PROCESS_FAIL",
        "A general business failure occurred. Do not retry.",
        "a general failure: do not send it again; ask Alipay+ support",
        "一般业务失败：请勿重试，请联系 Alipay+ 技术支持",
    ),
    (
        "REPEAT_REQ_INCONSISTENT",
        "Repeated requests are inconsistent.",
        "the same declaration number was sent before with other content",
        "同一申报单号此前以不同内容提交过",
    ),
    (
        "USER_STATUS_ABNORMAL",
        "The user status is abnormal.",
        "the buyer's account status is abnormal: ask Alipay+ support",
        "用户状态异常：请联系 Alipay+ 技术支持",
    ),
    (
        "REQUEST_TRAFFIC_EXCEED_LIMIT",
        "The request traffic exceeds the limit.",
        "too many requests: sent again more slowly",
        "请求频率超限：已放慢后重发",
    ),
    (
        "UNKNOWN_EXCEPTION",
        "An API call failed, which is caused by unknown reasons.",
        "failed for an unknown reason: declare it again later",
        "未知原因导致调用失败：请稍后重新申报",
    ),
    (
        "NOT_SENT",
        "",
        "not sent: the run stopped first; declare it again",
        "未发送：运行在发送前已停止，请重新申报",
    ),
    (
        "RETRANSMIT_LATER",
        "",
        "a correction that may be sent only later: declare it again after the time given",
        "更正须在规定时间后才能重发：请在提示的时间后重新申报",
    ),
    (
        "LEDGER_NOT_RECORDED",
        "",
        "answered, but not recorded: declare it again",
        "已有答复但未能记录：请重新申报",
    ),
    (
        "TIMEOUT",
        "",
        "no answer in time: declare it again later",
        "未在规定时间内收到答复：请稍后重新申报",
    ),
    (
        "CONNECTION_ERROR",
        "",
        "the connection failed: declare it again later",
        "连接失败：请稍后重新申报",
    ),
    (
        "HTTP_500",
        "",
        "Alipay+ had an error: declare it again later",
        "Alipay+ 服务器出错：请稍后重新申报",
    ),
    (
        "HTTP_502",
        "",
        "Alipay+ was not reachable: declare it again later",
        "无法连接 Alipay+：请稍后重新申报",
    ),
    (
        "HTTP_503",
        "",
        "Alipay+ was not available: declare it again later",
        "Alipay+ 暂不可用：请稍后重新申报",
    ),
    (
        "RESPONSE_TOO_LARGE",
        "",
        "the answer was too large to read: declare it again later",
        "答复过大无法读取：请稍后重新申报",
    ),
];

/// What a result code means in `language`, and the API's own text for it
/// (empty for the tool's own codes); the code itself when unknown.
pub fn explain(code: &str, language: Language) -> (&str, &'static str) {
    RESULT_CODES
        .iter()
        .find(|(known, ..)| *known == code)
        .map_or((code, ""), |&(_, api, en, zh)| (language.pick(en, zh), api))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_the_spec_names_is_explained_in_both_languages() {
        let spec = include_str!("../../tests/fixtures/declare_result_codes.txt");
        let named: Vec<&str> = spec.lines().filter(|line| !line.is_empty()).collect();
        assert!(named.len() >= 18, "{named:?}");
        for code in named {
            let (zh, api) = explain(code, Language::ZhCn);
            assert_ne!(zh, code, "{code} has no Chinese line");
            assert!(
                zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{code}: {zh}"
            );
            assert!(!api.is_empty(), "{code} has the API's own text");
            assert_ne!(explain(code, Language::En).0, code);
        }
        assert_eq!(
            explain("SOMETHING_NEW", Language::ZhCn),
            ("SOMETHING_NEW", "")
        );
    }
}
