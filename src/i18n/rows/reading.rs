//! How a row and its cells were read: their shape, what a spreadsheet did
//! to them — the messages, in both languages.

use std::fmt::Write;

use super::{RowMessage, formula_character};
use crate::i18n::Language;

impl RowMessage {
    /// How the row and its cells were read: their shape, what a spreadsheet did to them.
    pub(super) fn write_reading(
        &self,
        out: &mut impl Write,
        language: Language,
    ) -> std::fmt::Result {
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
}
