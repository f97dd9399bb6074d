//! The pages of `serve`, in English and Simplified Chinese: the home page
//! (profiles and the upload), a job's page (the validation, the button
//! that declares, the live progress, the downloads), the login form and
//! errors. Messages about rows come from `rejected.csv`, which the message
//! catalogue wrote in the profile's language.

use std::fmt::Write as _;
use std::path::Path;

use super::Profile;
use crate::messages::Language;
use crate::report::html::escape;

/// The pages' own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    Title,
    Profile,
    DeclaresTo,
    Sandbox,
    Upload,
    DropHere,
    Check,
    NoProfiles,
    Validation,
    Valid,
    Rejected,
    RejectedRows,
    Confirm,
    Progress,
    Downloads,
    Login,
    Token,
    Back,
    Row,
    Field,
    Error,
    Jobs,
    PastRuns,
    Inquire,
}

impl Text {
    pub const ALL: [Text; 24] = [
        Text::Title,
        Text::Profile,
        Text::DeclaresTo,
        Text::Sandbox,
        Text::Upload,
        Text::DropHere,
        Text::Check,
        Text::NoProfiles,
        Text::Validation,
        Text::Valid,
        Text::Rejected,
        Text::RejectedRows,
        Text::Confirm,
        Text::Progress,
        Text::Downloads,
        Text::Login,
        Text::Token,
        Text::Back,
        Text::Row,
        Text::Field,
        Text::Error,
        Text::Jobs,
        Text::PastRuns,
        Text::Inquire,
    ];

    pub fn text(self, language: Language) -> &'static str {
        let (en, zh) = match self {
            Text::Title => ("Customs declarations", "海关申报"),
            Text::Profile => ("Profile", "配置"),
            Text::DeclaresTo => ("declares to", "申报到"),
            Text::Sandbox => (
                "SANDBOX: nothing is declared for real",
                "沙箱：不会真实申报",
            ),
            Text::Upload => (
                "Order export (CSV or XLSX, 100 MB at most)",
                "订单导出文件（CSV 或 XLSX，最大 100 MB）",
            ),
            Text::DropHere => ("or drop the file here", "或将文件拖放到此处"),
            Text::Check => ("Check the file", "检查文件"),
            Text::NoProfiles => (
                "No profile: put a config (*.toml) in the --config-dir folder",
                "没有配置：请把配置文件（*.toml）放到 --config-dir 目录中",
            ),
            Text::Validation => ("Validation", "校验结果"),
            Text::Valid => ("valid rows", "有效行"),
            Text::Rejected => ("rejected rows", "被拒绝的行"),
            Text::RejectedRows => ("Rejected rows and their reasons", "被拒绝的行及原因"),
            Text::Confirm => (
                "I have checked the file and want to declare it",
                "我已检查文件，确认申报",
            ),
            Text::Progress => ("Progress", "进度"),
            Text::Downloads => ("Files", "文件下载"),
            Text::Login => ("Sign in", "登录"),
            Text::Token => ("Token", "令牌"),
            Text::Back => ("Another file", "上传其他文件"),
            Text::Row => ("Row", "行"),
            Text::Field => ("Field", "字段"),
            Text::Error => ("Reason", "原因"),
            Text::Jobs => ("Uploads and runs", "上传与申报记录"),
            Text::PastRuns => ("Past runs in the ledger", "账本中的历史申报"),
            Text::Inquire => ("Ask for customs outcomes", "查询海关结果"),
        };
        match language {
            Language::En => en,
            Language::ZhCn => zh,
        }
    }
}

/// The pages' stylesheet, served as `/static/page.css`.
pub const STYLE: &str = "body { font-family: system-ui, 'PingFang SC', 'Microsoft YaHei', \
'WenQuanYi Micro Hei', sans-serif; max-width: 60em; margin: 1.5em auto; padding: 0 1em; \
color: #1f2328; } .sandbox { background: #fff8c5; border: 1px solid #d4a72c; padding: .4em 1em; } \
table { border-collapse: collapse; } th, td { border: 1px solid #d0d7de; padding: .2em .5em; \
text-align: left; vertical-align: top; } #drop { border: 2px dashed #8c959f; padding: 1.5em; \
margin: .5em 0; } #drop.over { background: #ddf4ff; } button { font-size: 1.1em; padding: .3em 1em; } \
nav { float: right; }";

fn page(language: Language, title: &str, body: &str) -> String {
    let lang = language.tag();
    // No inline script or style: the Content-Security-Policy allows only
    // the server's own files.
    format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} — declare-batch</title>\n<link rel=\"stylesheet\" href=\"/static/page.css\">\n\
         <script src=\"/static/page.js\" defer></script>\n</head>\n<body>\n\
         <nav><a href=\"?lang=en\">English</a> · <a href=\"?lang=zh-CN\">中文</a></nav>\n\
         <h1>{}</h1>\n{body}</body>\n</html>\n",
        escape(title),
        escape(title)
    )
}

fn sandbox_banner(language: Language, profile: &Profile) -> String {
    if profile.sandbox {
        format!(
            "<p class=\"sandbox\" id=\"sandbox\">{}</p>\n",
            escape(Text::Sandbox.text(language))
        )
    } else {
        String::new()
    }
}

/// Where a job is, for the list of jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Validated,
    Running,
    /// Cut short by a restart: declaring again resumes it.
    Interrupted,
    Finished(u8),
    Failed,
}

/// One line of the list of jobs.
pub struct JobLine {
    pub id: String,
    pub profile: String,
    pub created_at: String,
    pub state: JobState,
}

fn state_text(language: Language, state: JobState) -> String {
    let zh = language == Language::ZhCn;
    match state {
        JobState::Validated if zh => "已校验，未申报".to_owned(),
        JobState::Validated => "checked, not declared".to_owned(),
        JobState::Running if zh => "申报中".to_owned(),
        JobState::Running => "declaring".to_owned(),
        JobState::Interrupted if zh => "中断：打开后可继续申报".to_owned(),
        JobState::Interrupted => "interrupted: open it to resume".to_owned(),
        JobState::Finished(code) if zh => format!("已完成（退出码 {code}）"),
        JobState::Finished(code) => format!("finished (exit {code})"),
        JobState::Failed if zh => "失败".to_owned(),
        JobState::Failed => "failed".to_owned(),
    }
}

/// `/`: the profiles, the upload, the jobs so far, and the past runs each
/// profile's ledger knows.
pub fn home(
    language: Language,
    profiles: &[Profile],
    jobs: &[JobLine],
    past: &[(String, Vec<crate::ledger::LedgerRun>)],
) -> String {
    let t = |text: Text| escape(text.text(language));
    let mut body = String::new();
    if profiles.is_empty() {
        let _ = writeln!(body, "<p>{}</p>", t(Text::NoProfiles));
        return page(language, Text::Title.text(language), &body);
    }
    if profiles.iter().any(|p| p.sandbox) {
        let _ = writeln!(
            body,
            "<p class=\"sandbox\">{}: {}</p>",
            t(Text::Sandbox),
            profiles
                .iter()
                .filter(|p| p.sandbox)
                .map(|p| escape(&p.name))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(
        body,
        "<form id=\"upload\" method=\"post\" action=\"/uploads\" enctype=\"multipart/form-data\">\n\
         <p><label>{}: <select name=\"profile\" id=\"profile\">",
        t(Text::Profile)
    );
    for profile in profiles {
        let _ = writeln!(
            body,
            "<option value=\"{}\">{} — {}</option>",
            escape(&profile.name),
            escape(&profile.name),
            match &profile.problem {
                Some(problem) => escape(problem),
                None => format!(
                    "{} {}{}",
                    t(Text::DeclaresTo),
                    escape(&profile.endpoint),
                    if profile.sandbox { " (sandbox)" } else { "" }
                ),
            }
        );
    }
    let _ = writeln!(
        body,
        "</select></label></p>\n<div id=\"drop\"><label>{}: \
         <input type=\"file\" name=\"file\" id=\"file\" accept=\".csv,.xlsx\" required></label>\
         <p>{}</p></div>\n<button type=\"submit\" id=\"check\" data-waiting=\"{}\">{}</button>\n\
         <p id=\"upload-status\" role=\"status\"></p>\n</form>",
        t(Text::Upload),
        t(Text::DropHere),
        escape(language.pick(
            "Checking the file… At most two files are checked at once: when others are being \
             checked, this one waits its turn.",
            "正在检查文件……同一时间最多检查两个文件：若有其他文件正在检查，本文件将排队等候。"
        )),
        t(Text::Check)
    );
    if !jobs.is_empty() {
        let _ = writeln!(body, "<h2>{}</h2>\n<table id=\"jobs\">", t(Text::Jobs));
        for job in jobs {
            let _ = writeln!(
                body,
                "<tr><td><a href=\"/jobs/{}\">{}</a></td><td>{}</td><td>{}</td></tr>",
                escape(&job.id),
                escape(&job.created_at),
                escape(&job.profile),
                escape(&state_text(language, job.state))
            );
        }
        body.push_str("</table>\n");
    }
    for (profile, runs) in past.iter().filter(|(_, runs)| !runs.is_empty()) {
        let _ = writeln!(
            body,
            "<h2>{} — {}</h2>\n<table class=\"past\">",
            t(Text::PastRuns),
            escape(profile)
        );
        for run in runs {
            let _ = writeln!(
                body,
                "<tr><td>{}</td><td>{}</td><td>S {} · F {} · U {}</td><td>\
                 <form method=\"post\" action=\"/inquire\"><input type=\"hidden\" name=\"profile\" \
                 value=\"{}\"><input type=\"hidden\" name=\"out\" value=\"{}\">\
                 <button type=\"submit\" class=\"inquire\">{}</button></form></td></tr>",
                escape(&run.started_at),
                past_link(profile, &run.out_dir),
                run.success,
                run.failed,
                run.unknown,
                escape(profile),
                escape(&run.out_dir.display().to_string()),
                t(Text::Inquire)
            );
        }
        body.push_str("</table>\n");
    }
    page(language, Text::Title.text(language), &body)
}

/// The query that names a past run (and one of its files).
fn past_query(profile: &str, out: &Path, file: Option<&str>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("profile", profile)
        .append_pair("out", &out.display().to_string());
    if let Some(file) = file {
        query.append_pair("file", file);
    }
    escape(&query.finish())
}

/// A link to a past run's page, showing its folder.
fn past_link(profile: &str, out: &Path) -> String {
    format!(
        "<a href=\"/past?{}\">{}</a>",
        past_query(profile, out, None),
        escape(&out.display().to_string())
    )
}

/// A past run: its counts, its files, and the inquire button.
pub fn past_run(language: Language, profile: &Profile, out: &Path) -> String {
    let t = |text: Text| escape(text.text(language));
    let summary: serde_json::Value = std::fs::read_to_string(out.join("summary.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    let results = &summary["results"];
    let mut body = format!(
        "<h2>{}</h2>\n<p>{}: <b>{}</b> · {} {}</p>\n<p id=\"counts\">S {} · F {} · U {}</p>\n\
         <h2>{}</h2>\n<ul>\n",
        escape(&out.display().to_string()),
        t(Text::Profile),
        escape(&profile.name),
        t(Text::DeclaresTo),
        escape(&profile.endpoint),
        results["S"],
        results["F"],
        results["U"],
        t(Text::Downloads)
    );
    for name in super::DOWNLOADS {
        if out.join(name).exists() {
            let _ = writeln!(
                body,
                "<li><a href=\"/past?{}\">{name}</a></li>",
                past_query(&profile.name, out, Some(name))
            );
        }
    }
    let _ = writeln!(
        body,
        "</ul>\n<form method=\"post\" action=\"/inquire\"><input type=\"hidden\" \
         name=\"profile\" value=\"{}\"><input type=\"hidden\" name=\"out\" value=\"{}\">\
         <button type=\"submit\" id=\"inquire\">{}</button></form>\n<p><a href=\"/\">←</a></p>",
        escape(&profile.name),
        escape(&out.display().to_string()),
        t(Text::Inquire)
    );
    page(language, Text::Title.text(language), &body)
}

/// What an inquiry about a past run found.
pub fn inquired(
    language: Language,
    out: &Path,
    report: &crate::run::inquire::InquiryReport,
) -> String {
    let t = |text: Text| escape(text.text(language));
    let statuses: Vec<String> = report
        .by_status
        .iter()
        .map(|(status, count)| format!("{} {count}", escape(status)))
        .collect();
    let body = format!(
        "<h2>{}</h2>\n<p>{}</p>\n<p id=\"inquiry\">customs: {} · NOT_FOUND {} · \
         U → S {} · U {}</p>\n<p>{}</p>\n<p><a href=\"/\">←</a></p>\n",
        t(Text::Inquire),
        escape(&out.display().to_string()),
        if statuses.is_empty() {
            "-".to_owned()
        } else {
            statuses.join(", ")
        },
        report.not_found,
        report.settled,
        report.still_unknown,
        escape(&out.join("customs.csv").display().to_string())
    );
    page(language, Text::Title.text(language), &body)
}

/// The rows of `rejected.csv`: row, field, error.
fn rejected_rows(folder: &Path) -> Vec<[String; 3]> {
    let Ok(mut reader) = crate::report::read_output_csv(&folder.join("rejected.csv")) else {
        return Vec::new();
    };
    reader
        .records()
        .flatten()
        .take(crate::report::html::MAX_LISTED)
        .map(|record| [0, 1, 2].map(|i| record.get(i).unwrap_or_default().to_owned()))
        .collect()
}

/// `/jobs/ID`: the validation, the button that declares, the progress.
pub fn job(
    language: Language,
    id: &str,
    profile: &Profile,
    folder: &Path,
    valid_rows: u64,
    started: bool,
) -> String {
    let t = |text: Text| escape(text.text(language));
    let mut body = sandbox_banner(language, profile);
    let rejected = rejected_rows(folder);
    let summary: serde_json::Value = std::fs::read_to_string(folder.join("summary.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    let rejected_count = summary["rows"]["rejected"].as_u64().unwrap_or(0);
    let _ = writeln!(
        body,
        "<h2>{}</h2>\n<p>{}: <b>{}</b> · {} {}</p>\n\
         <p><b id=\"valid\">{valid_rows}</b> {} · <b id=\"rejected\">{rejected_count}</b> {}</p>",
        t(Text::Validation),
        t(Text::Profile),
        escape(&profile.name),
        t(Text::DeclaresTo),
        escape(&profile.endpoint),
        t(Text::Valid),
        t(Text::Rejected)
    );
    if !rejected.is_empty() {
        let _ = writeln!(
            body,
            "<h3>{}</h3>\n<table id=\"rejected-rows\"><tr><th>{}</th><th>{}</th><th>{}</th></tr>",
            t(Text::RejectedRows),
            t(Text::Row),
            t(Text::Field),
            t(Text::Error)
        );
        for [row, field, error] in &rejected {
            let _ = writeln!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(row),
                escape(field),
                escape(error)
            );
        }
        body.push_str("</table>\n");
    }
    if let Some(problem) = profile.problem.as_ref().filter(|_| !started) {
        let _ = writeln!(body, "<p id=\"profile-problem\">{}</p>", escape(problem));
    } else if !started && valid_rows > 0 {
        let _ = writeln!(
            body,
            "<form method=\"post\" action=\"/jobs/{id}/declare\" id=\"declare-form\">\n\
             <p><label><input type=\"checkbox\" name=\"confirm\" value=\"yes\" id=\"confirm\" required> {}</label></p>\n\
             <button type=\"submit\" id=\"declare\">{}</button>\n</form>",
            t(Text::Confirm),
            escape(&declare_label(language, valid_rows, &profile.endpoint))
        );
    }
    let _ = writeln!(
        body,
        "<h2>{}</h2>\n<p id=\"progress\" data-job=\"{}\">–</p>\n<h2>{}</h2>\n<ul id=\"files\">",
        t(Text::Progress),
        escape(id),
        t(Text::Downloads)
    );
    for name in super::DOWNLOADS {
        if folder.join(name).exists() || started {
            let _ = writeln!(
                body,
                "<li><a href=\"/jobs/{id}/files/{name}\">{name}</a></li>"
            );
        }
    }
    let _ = writeln!(body, "</ul>\n<p><a href=\"/\">{}</a></p>", t(Text::Back));
    page(language, Text::Title.text(language), &body)
}

/// "Declare N rows to ENDPOINT", in the page's language.
fn declare_label(language: Language, rows: u64, endpoint: &str) -> String {
    match language {
        Language::En => format!("Declare {rows} rows to {endpoint}"),
        Language::ZhCn => format!("申报 {rows} 行到 {endpoint}"),
    }
}

/// The token form, for a server on a non-loopback address.
pub fn login(language: Language) -> String {
    let t = |text: Text| escape(text.text(language));
    let body = format!(
        "<form method=\"post\" action=\"/login\"><label>{}: \
         <input type=\"password\" name=\"token\" autocomplete=\"current-password\"></label> \
         <button type=\"submit\">{}</button></form>",
        t(Text::Token),
        t(Text::Login)
    );
    page(language, Text::Login.text(language), &body)
}

/// An error, said plainly.
pub fn error(message: &str) -> String {
    page(
        Language::En,
        "declare-batch",
        &format!(
            "<p id=\"error\">{}</p><p><a href=\"/\">←</a></p>",
            escape(message)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_has_both_languages() {
        for text in Text::ALL {
            let (en, zh) = (text.text(Language::En), text.text(Language::ZhCn));
            assert!(!en.is_empty() && en != zh, "{text:?}");
            assert!(
                zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{text:?}: {zh}"
            );
        }
    }
}
