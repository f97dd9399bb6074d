//! The canonical input fields: one per leaf of the declare request body,
//! named by its dotted path (the contract's canonical column headers), with
//! the per-field facts the spec fixes (maximum length, whether it is an ID
//! that a spreadsheet can corrupt, whether every row needs it).

use std::fmt;

/// A leaf of the declare request body, as a column of the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    PaymentRequestId,
    CustomsDeclarationRequestId,
    CustomsCode,
    Region,
    MerchantCustomsCode,
    MerchantCustomsName,
    AmountValue,
    AmountCurrency,
    IsSplit,
    ReferenceOrderId,
    CertificateType,
    CertificateNo,
    HolderFullName,
    HolderFirstName,
    HolderMiddleName,
    HolderLastName,
    EffectiveDate,
    ExpireDate,
}

/// `[columns]` and `[defaults]` resolved to fields.
#[derive(Debug, Clone, Default)]
pub struct FieldSettings {
    /// Header configured for each field (by [`Field::index`]); `None` means
    /// the canonical name.
    pub columns: [Option<String>; 18],
    /// Default value for each field, trimmed; `None` when there is none.
    pub defaults: [Option<String>; 18],
}

impl FieldSettings {
    /// The header of a field mapped to no column (on the page's mapping
    /// screen): no export has it, so the field is read from nowhere.
    pub const UNMAPPED: &'static str = "\u{0}not in the file";

    /// The header a field is looked up under.
    pub fn header_for(&self, field: Field) -> &str {
        self.columns[field.index()]
            .as_deref()
            .unwrap_or(field.name())
    }
}

impl Field {
    /// Every field, in the contract's order.
    pub const ALL: [Field; 18] = [
        Field::PaymentRequestId,
        Field::CustomsDeclarationRequestId,
        Field::CustomsCode,
        Field::Region,
        Field::MerchantCustomsCode,
        Field::MerchantCustomsName,
        Field::AmountValue,
        Field::AmountCurrency,
        Field::IsSplit,
        Field::ReferenceOrderId,
        Field::CertificateType,
        Field::CertificateNo,
        Field::HolderFullName,
        Field::HolderFirstName,
        Field::HolderMiddleName,
        Field::HolderLastName,
        Field::EffectiveDate,
        Field::ExpireDate,
    ];

    /// The canonical header: the field's dotted path in the request body.
    pub fn name(self) -> &'static str {
        match self {
            Field::PaymentRequestId => "paymentRequestId",
            Field::CustomsDeclarationRequestId => "customsDeclarationRequestId",
            Field::CustomsCode => "customs.customsCode",
            Field::Region => "customs.region",
            Field::MerchantCustomsCode => "merchantCustomsInfo.merchantCustomsCode",
            Field::MerchantCustomsName => "merchantCustomsInfo.merchantCustomsName",
            Field::AmountValue => "declarationAmount.value",
            Field::AmountCurrency => "declarationAmount.currency",
            Field::IsSplit => "isSplit",
            Field::ReferenceOrderId => "referenceOrderId",
            Field::CertificateType => "buyerCertificate.certificateType",
            Field::CertificateNo => "buyerCertificate.certificateNo",
            Field::HolderFullName => "buyerCertificate.holderName.fullName",
            Field::HolderFirstName => "buyerCertificate.holderName.firstName",
            Field::HolderMiddleName => "buyerCertificate.holderName.middleName",
            Field::HolderLastName => "buyerCertificate.holderName.lastName",
            Field::EffectiveDate => "buyerCertificate.effectiveDate",
            Field::ExpireDate => "buyerCertificate.expireDate",
        }
    }

    /// The field whose canonical header is `name`, if any.
    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|field| field.name() == name)
    }

    /// Maximum length in characters, as the spec gives it. `isSplit`'s
    /// "maximum length 1" is a mistake in the spec (it cannot hold `true`)
    /// and is deliberately absent.
    pub fn max_chars(self) -> Option<usize> {
        match self {
            Field::PaymentRequestId
            | Field::CustomsDeclarationRequestId
            | Field::ReferenceOrderId
            | Field::CertificateNo => Some(64),
            Field::CustomsCode | Field::MerchantCustomsCode | Field::HolderFullName => Some(128),
            Field::Region => Some(2),
            Field::MerchantCustomsName => Some(256),
            Field::AmountCurrency => Some(3),
            Field::HolderFirstName | Field::HolderMiddleName | Field::HolderLastName => Some(32),
            Field::AmountValue
            | Field::IsSplit
            | Field::CertificateType
            | Field::EffectiveDate
            | Field::ExpireDate => None,
        }
    }

    /// IDs that a spreadsheet silently corrupts when it stores them as
    /// numbers (Excel keeps 15 significant digits).
    pub fn is_id(self) -> bool {
        matches!(
            self,
            Field::PaymentRequestId
                | Field::CustomsDeclarationRequestId
                | Field::ReferenceOrderId
                | Field::CertificateNo
        )
    }

    /// Names, which are sent exactly as given (full-width letters stay).
    pub fn is_name(self) -> bool {
        matches!(
            self,
            Field::MerchantCustomsName
                | Field::HolderFullName
                | Field::HolderFirstName
                | Field::HolderMiddleName
                | Field::HolderLastName
        )
    }

    /// Fields every row needs, from a column or a default.
    pub fn always_required(self) -> bool {
        matches!(
            self,
            Field::PaymentRequestId
                | Field::CustomsDeclarationRequestId
                | Field::CustomsCode
                | Field::Region
                | Field::MerchantCustomsCode
                | Field::MerchantCustomsName
                | Field::AmountValue
                | Field::AmountCurrency
                | Field::IsSplit
        )
    }

    /// Date-time fields: spreadsheet date cells in them become ISO 8601.
    pub fn is_datetime(self) -> bool {
        matches!(self, Field::EffectiveDate | Field::ExpireDate)
    }

    /// Position in [`Field::ALL`], for per-field tables.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_index_matches_position() {
        for (position, field) in Field::ALL.into_iter().enumerate() {
            assert_eq!(Field::from_name(field.name()), Some(field));
            assert_eq!(field.index(), position);
        }
        assert_eq!(Field::from_name("customsCode"), None);
    }
}
