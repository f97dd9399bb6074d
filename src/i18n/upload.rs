//! What the page says when an upload cannot be checked, in the clerk's
//! language and without the tool's jargon: which file, what is wrong with
//! it, and what to do in Excel.

use super::Language;

/// Why an uploaded file is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadProblem {
    /// Not a .csv or .xlsx (the extension, lower case, maybe empty).
    WrongKind { name: String, extension: String },
    /// Zero bytes.
    Empty { name: String },
    /// Column headers and no order row below them.
    HeaderOnly { name: String, header_row: u64 },
    /// Larger than the page takes.
    TooLarge { megabytes: u64 },
    /// More than one file in one upload.
    OneAtATime,
    /// No profile or no file chosen.
    ChooseBoth,
    /// The file could not be read or its columns not found: the reason.
    CannotRead { name: String, reason: String },
    /// A header the profile reads that the file has in two columns.
    HeaderTwice {
        name: String,
        header: String,
        first: usize,
        second: usize,
    },
    /// A new sandbox profile's name that cannot be used.
    ProfileName { name: String },
    /// A new sandbox profile's name already taken.
    ProfileTaken { name: String },
    /// Too many sandbox profiles made on the page already.
    TooManyProfiles { most: usize },
}

impl UploadProblem {
    /// The explanation in `language`.
    pub fn text(&self, language: Language) -> String {
        match (self, language) {
            (UploadProblem::WrongKind { name, extension }, Language::En) => {
                let what = match extension.as_str() {
                    "xls" => "an old Excel workbook (.xls)",
                    "numbers" => "a Numbers document",
                    "pdf" => "a PDF, which holds no table to read",
                    "" => "a file without an extension",
                    _ => "not a table the page reads",
                };
                format!(
                    "“{name}” is {what}. Open the export in Excel and save it as “Excel \
                     Workbook (.xlsx)” or “CSV UTF-8 (.csv)”, then upload that file."
                )
            }
            (UploadProblem::WrongKind { name, extension }, Language::ZhCn) => {
                let what = match extension.as_str() {
                    "xls" => "旧版 Excel 工作簿（.xls）",
                    "numbers" => "Numbers 文稿",
                    "pdf" => "PDF 文件，其中没有可读取的表格",
                    "" => "没有扩展名的文件",
                    _ => "本页面无法读取的文件类型",
                };
                format!(
                    "“{name}”是{what}。请用 Excel 打开导出文件，“另存为”“Excel 工作簿（.xlsx）”或\
                     “CSV UTF-8（.csv）”，再上传该文件。"
                )
            }
            (UploadProblem::Empty { name }, Language::En) => format!(
                "“{name}” is empty (0 bytes). Export the orders again and upload the new file."
            ),
            (UploadProblem::Empty { name }, Language::ZhCn) => {
                format!("“{name}”是空文件（0 字节）。请重新导出订单后再上传。")
            }
            (UploadProblem::HeaderOnly { name, header_row }, Language::En) => format!(
                "“{name}” has column headers (row {header_row}) but no order rows below them. \
                 Check that the export covers the right days, then upload it again."
            ),
            (UploadProblem::HeaderOnly { name, header_row }, Language::ZhCn) => format!(
                "“{name}”只有表头（第 {header_row} 行），下面没有订单行。请确认导出的日期范围正确后\
                 重新上传。"
            ),
            (UploadProblem::TooLarge { megabytes }, Language::En) => format!(
                "The file is larger than {megabytes} MB. Split the export into smaller files \
                 (for example one per week) and upload them one by one."
            ),
            (UploadProblem::TooLarge { megabytes }, Language::ZhCn) => format!(
                "文件超过 {megabytes} MB。请把导出拆分为较小的文件（例如每周一个），逐个上传。"
            ),
            (UploadProblem::OneAtATime, Language::En) => "Upload one file at a time.".to_owned(),
            (UploadProblem::OneAtATime, Language::ZhCn) => "请一次只上传一个文件。".to_owned(),
            (UploadProblem::ChooseBoth, Language::En) => {
                "Choose a profile and a file, then press the button.".to_owned()
            }
            (UploadProblem::ChooseBoth, Language::ZhCn) => {
                "请选择配置和文件，再点击按钮。".to_owned()
            }
            (UploadProblem::CannotRead { name, reason }, Language::En) => {
                format!("“{name}” could not be read: {reason}")
            }
            (UploadProblem::CannotRead { name, reason }, Language::ZhCn) => {
                format!("无法读取“{name}”：{reason}")
            }
            (
                UploadProblem::HeaderTwice {
                    name,
                    header,
                    first,
                    second,
                },
                Language::En,
            ) => format!(
                "“{name}” has the header “{header}” in two columns ({first} and {second}): \
                 rename one of them in the export (or in Excel) and upload it again."
            ),
            (
                UploadProblem::HeaderTwice {
                    name,
                    header,
                    first,
                    second,
                },
                Language::ZhCn,
            ) => format!(
                "“{name}”中有两列的列标题都是“{header}”（第 {first} 列和第 {second} 列）：\
                 请在导出文件（或 Excel）中重命名其中一列后重新上传。"
            ),
            (UploadProblem::ProfileName { name }, Language::En) => {
                format!("“{name}” cannot name a profile: use 1 to 40 letters, digits, - or _.")
            }
            (UploadProblem::ProfileName { name }, Language::ZhCn) => {
                format!("“{name}”不能用作配置名称：请使用 1 到 40 个字母、汉字、数字、- 或 _。")
            }
            (UploadProblem::ProfileTaken { name }, Language::En) => {
                format!("A profile named “{name}” exists already: choose it, or another name.")
            }
            (UploadProblem::ProfileTaken { name }, Language::ZhCn) => {
                format!("名为“{name}”的配置已存在：请直接选择它，或换一个名称。")
            }
            (UploadProblem::TooManyProfiles { most }, Language::En) => {
                format!("The page has made {most} sandbox profiles already: use one of them.")
            }
            (UploadProblem::TooManyProfiles { most }, Language::ZhCn) => {
                format!("网页已创建 {most} 个沙箱配置：请使用其中之一。")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_problem_is_said_in_both_languages_without_jargon() {
        let problems = [
            UploadProblem::WrongKind {
                name: "orders.xls".into(),
                extension: "xls".into(),
            },
            UploadProblem::WrongKind {
                name: "a.pdf".into(),
                extension: "pdf".into(),
            },
            UploadProblem::Empty {
                name: "e.csv".into(),
            },
            UploadProblem::HeaderOnly {
                name: "h.csv".into(),
                header_row: 1,
            },
            UploadProblem::TooLarge { megabytes: 100 },
            UploadProblem::OneAtATime,
            UploadProblem::ChooseBoth,
            UploadProblem::ProfileName { name: "a b".into() },
            UploadProblem::HeaderTwice {
                name: "o.csv".into(),
                header: "海关".into(),
                first: 3,
                second: 8,
            },
            UploadProblem::ProfileTaken {
                name: "shop".into(),
            },
            UploadProblem::TooManyProfiles { most: 100 },
        ];
        for problem in problems {
            let (en, zh) = (problem.text(Language::En), problem.text(Language::ZhCn));
            assert_ne!(en, zh);
            assert!(
                zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{zh}"
            );
            for text in [&en, &zh] {
                for jargon in ["[columns]", "header_row", "exit", "/"] {
                    assert!(!text.contains(jargon), "{jargon} in {text}");
                }
            }
        }
    }
}
