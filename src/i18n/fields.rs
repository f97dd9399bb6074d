//! The declare fields as a person calls them, for the page's column
//! mapping and grid: what each field is, in the clerk's language.

use super::{Language, words};
use crate::fields::Field;

words! {
    /// Each field's name for people.
    FieldWords {
        payment_request_id: "Payment ID", "支付单号";
        customs_declaration_request_id: "Declaration ID", "报关流水号";
        customs_code: "Customs code", "海关代码";
        region: "Customs region", "海关地区";
        merchant_customs_code: "Merchant customs code", "商户海关备案号";
        merchant_customs_name: "Merchant customs name", "商户海关备案名称";
        amount_value: "Declared amount", "申报金额";
        amount_currency: "Currency", "币种";
        is_split: "Split order", "是否拆单";
        reference_order_id: "Sub-order ID", "子订单号";
        certificate_type: "Certificate type", "证件类型";
        certificate_no: "Certificate number", "证件号码";
        holder_full_name: "Buyer's full name", "订购人姓名";
        holder_first_name: "Buyer's first name", "订购人名";
        holder_middle_name: "Buyer's middle name", "订购人中间名";
        holder_last_name: "Buyer's last name", "订购人姓";
        effective_date: "Certificate valid from", "证件生效日期";
        expire_date: "Certificate valid until", "证件失效日期";
    }
}

/// What `field` is called in `language`.
pub fn field_words(field: Field, language: Language) -> &'static str {
    let words = FieldWords::of(language);
    match field {
        Field::PaymentRequestId => words.payment_request_id,
        Field::CustomsDeclarationRequestId => words.customs_declaration_request_id,
        Field::CustomsCode => words.customs_code,
        Field::Region => words.region,
        Field::MerchantCustomsCode => words.merchant_customs_code,
        Field::MerchantCustomsName => words.merchant_customs_name,
        Field::AmountValue => words.amount_value,
        Field::AmountCurrency => words.amount_currency,
        Field::IsSplit => words.is_split,
        Field::ReferenceOrderId => words.reference_order_id,
        Field::CertificateType => words.certificate_type,
        Field::CertificateNo => words.certificate_no,
        Field::HolderFullName => words.holder_full_name,
        Field::HolderFirstName => words.holder_first_name,
        Field::HolderMiddleName => words.holder_middle_name,
        Field::HolderLastName => words.holder_last_name,
        Field::EffectiveDate => words.effective_date,
        Field::ExpireDate => words.expire_date,
    }
}
