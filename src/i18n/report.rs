//! The words of `report.html`, which `validate` and `run` write, and of
//! the end-of-run table on the terminal.

use super::words;

words! {
    /// What the report says, in one language.
    ReportWords {
        title: "declare-batch report", "declare-batch 报告";
        input: "Input", "输入文件";
        endpoint: "Declared to", "申报到";
        started: "Started", "开始时间";
        duration: "Duration", "用时";
        exit_code: "Exit code", "退出码";
        stopped: "Stopped early", "提前停止";
        rows: "Rows", "行数";
        read: "read", "已读取";
        valid: "valid", "有效";
        rejected: "rejected", "被拒绝";
        blank: "blank, skipped", "空行（已跳过）";
        above_header: "above the header, skipped", "表头上方（已跳过）";
        totals: "totals rows, skipped", "合计行（已跳过）";
        outcomes: "Outcomes", "申报结果";
        result_code: "Result code", "结果码";
        count: "Count", "数量";
        errors_by_field: "Errors by field", "按字段统计的错误";
        field: "Field", "字段";
        code: "Code", "代码";
        meaning: "Meaning", "含义";
        requests_per_second: "Requests per second", "每秒请求数";
        second: "second", "秒";
        latency: "Latency (ms)", "延迟（毫秒）";
        requests: "requests", "请求";
        identity_checks: "Identity checks", "身份核验";
        need_action: "Rows that need action", "需要处理的行";
        rejected_rows: "Rejected: fix them in rejected.xlsx and feed it back", "被拒绝：在 rejected.xlsx 中修正后重新导入";
        failed_rows: "Failed (F): final answers", "失败（F）：最终结果";
        unknown_rows: "Unknown (U): in retry.csv, to send again or inquire", "未知（U）：在 retry.csv 中，可重新申报或查询";
        row: "Row", "行";
        error: "Error", "错误";
        message: "Message", "说明";
        status: "Status", "状态";
        and_more: "more: see the file", "更多：见文件";
        nothing: "None.", "无。";
        sandbox: "Sandbox: nothing was declared for real", "沙箱：没有真实申报";
        most_frequent_errors: "most frequent errors:", "最常见的错误：";
        retransmitted: "retransmitted (corrections answered)", "已重新申报（更正已获应答）";
        waiting_for_retransmission: "corrections waiting for their retransmission", "等待重新申报的更正";
        customs_results: "Customs results (inquiry)", "海关结果（查询）";
        customs_result: "Customs result", "海关结果";
    }
}
