//! The page's line about a run, in the clerk's language: how far it is
//! against the job's valid rows, what was declared earlier, the pace and
//! the time left from the run's own start, the wait for an endpoint that
//! stopped answering, and the end in words (never an exit code).

use std::time::Duration;

use super::Language;

/// What the line says a run has come to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFigures {
    /// The job's valid rows: the whole of what the run settles.
    pub valid: u64,
    pub settled: u64,
    /// Rows answered from the ledger or the journal: declared earlier.
    pub earlier: u64,
    pub success: u64,
    pub failed: u64,
    pub unknown: u64,
    pub rejected: u64,
    /// Rows settled per second since the run began sending, and the time
    /// left at that pace.
    pub rate: Option<f64>,
    pub left: Option<Duration>,
    /// The endpoint stopped answering at this local time.
    pub waiting_since: Option<String>,
    pub end: Option<RunEndWords>,
}

/// How a run ended, for its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEndWords {
    /// It ran to its end (or stopped, `stopped`, at the clerk's request).
    Finished { stopped: bool },
    /// An error ended it.
    Failed(String),
}

/// A duration as the clerk reads it: `3 min 20 s`, `3 分 20 秒`.
pub fn duration_text(duration: Duration, language: Language) -> String {
    let seconds = duration.as_secs();
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match language {
        Language::En => match (hours, minutes) {
            (0, 0) => format!("{seconds} s"),
            (0, _) => format!("{minutes} min {seconds} s"),
            _ => format!("{hours} h {minutes} min"),
        },
        Language::ZhCn => match (hours, minutes) {
            (0, 0) => format!("{seconds} 秒"),
            (0, _) => format!("{minutes} 分 {seconds} 秒"),
            _ => format!("{hours} 小时 {minutes} 分"),
        },
    }
}

/// The line the job's page shows.
pub fn progress_text(figures: &RunFigures, language: Language) -> String {
    let f = figures;
    match (&f.end, language) {
        (None, Language::En) => {
            let mut text = format!("{} of {} rows settled", f.settled, f.valid);
            if f.earlier > 0 {
                text.push_str(&format!(" ({} declared earlier)", f.earlier));
            }
            text.push_str(&format!(
                " · declared {} · failed {} · not settled {}",
                f.success, f.failed, f.unknown
            ));
            if let Some(since) = &f.waiting_since {
                text.push_str(&format!(
                    " · Alipay+ is not answering: waiting for it since {since}"
                ));
            } else if let (Some(rate), Some(left)) = (f.rate, f.left) {
                text.push_str(&format!(
                    " · {rate:.1} rows/s · about {} left",
                    duration_text(left, language)
                ));
            }
            text
        }
        (None, Language::ZhCn) => {
            let mut text = format!("已处理 {} / {} 行", f.settled, f.valid);
            if f.earlier > 0 {
                text.push_str(&format!("（其中 {} 行此前已申报）", f.earlier));
            }
            text.push_str(&format!(
                " · 已申报 {} · 失败 {} · 未确定 {}",
                f.success, f.failed, f.unknown
            ));
            if let Some(since) = &f.waiting_since {
                text.push_str(&format!(" · Alipay+ 暂无响应，自 {since} 起等待"));
            } else if let (Some(rate), Some(left)) = (f.rate, f.left) {
                text.push_str(&format!(
                    " · 每秒 {rate:.1} 行 · 预计还需 {}",
                    duration_text(left, language)
                ));
            }
            text
        }
        (Some(RunEndWords::Failed(error)), Language::En) => {
            format!("Failed: {error}. Rows not settled are in retry.xlsx.")
        }
        (Some(RunEndWords::Failed(error)), Language::ZhCn) => {
            format!("失败：{error}。未确定的行在 retry.xlsx 中。")
        }
        (Some(RunEndWords::Finished { stopped }), Language::En) => {
            let mut text = format!(
                "{}: {} rows declared",
                if *stopped { "Stopped" } else { "Finished" },
                f.success
            );
            if f.earlier > 0 {
                text.push_str(&format!(" ({} of them earlier)", f.earlier));
            }
            for (count, what) in [
                (f.failed, "failed"),
                (f.unknown, "not settled"),
                (f.rejected, "rejected"),
            ] {
                if count > 0 {
                    text.push_str(&format!(", {count} {what}"));
                }
            }
            text.push('.');
            if f.failed > 0 || f.rejected > 0 {
                text.push_str(" The reasons are in results.xlsx and rejected.xlsx.");
            }
            if f.unknown > 0 {
                text.push_str(" Rows not settled are in retry.xlsx: declare it again later.");
            }
            text
        }
        (Some(RunEndWords::Finished { stopped }), Language::ZhCn) => {
            let mut text = format!(
                "{}：{} 行已申报",
                if *stopped { "已停止" } else { "完成" },
                f.success
            );
            if f.earlier > 0 {
                text.push_str(&format!("（其中 {} 行此前已申报）", f.earlier));
            }
            for (count, what) in [
                (f.failed, "失败"),
                (f.unknown, "未确定"),
                (f.rejected, "被拒"),
            ] {
                if count > 0 {
                    text.push_str(&format!("，{count} 行{what}"));
                }
            }
            text.push('。');
            if f.failed > 0 || f.rejected > 0 {
                text.push_str("原因见 results.xlsx 和 rejected.xlsx。");
            }
            if f.unknown > 0 {
                text.push_str("未确定的行在 retry.xlsx 中，请稍后重新申报。");
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_how_far_and_how_it_ended_in_both_languages() {
        let running = RunFigures {
            valid: 50_000,
            settled: 590,
            earlier: 120,
            success: 580,
            failed: 10,
            rate: Some(19.8),
            left: Some(Duration::from_secs(2_490)),
            ..RunFigures::default()
        };
        assert_eq!(
            progress_text(&running, Language::En),
            "590 of 50000 rows settled (120 declared earlier) · declared 580 · failed 10 · not \
             settled 0 · 19.8 rows/s · about 41 min 30 s left"
        );
        assert_eq!(
            progress_text(&running, Language::ZhCn),
            "已处理 590 / 50000 行（其中 120 行此前已申报） · 已申报 580 · 失败 10 · 未确定 0 · \
             每秒 19.8 行 · 预计还需 41 分 30 秒"
        );
        let finished = RunFigures {
            valid: 120,
            settled: 120,
            success: 117,
            failed: 3,
            end: Some(RunEndWords::Finished { stopped: false }),
            ..RunFigures::default()
        };
        assert_eq!(
            progress_text(&finished, Language::ZhCn),
            "完成：117 行已申报，3 行失败。原因见 results.xlsx 和 rejected.xlsx。"
        );
        let stopped = RunFigures {
            unknown: 20,
            end: Some(RunEndWords::Finished { stopped: true }),
            ..finished
        };
        let text = progress_text(&stopped, Language::En);
        assert!(
            text.starts_with("Stopped: 117 rows declared, 3 failed, 20 not settled."),
            "{text}"
        );
        assert!(text.contains("retry.xlsx"), "{text}");
        for language in [Language::En, Language::ZhCn] {
            assert!(!progress_text(&stopped, language).contains("exit"));
        }
    }
}
