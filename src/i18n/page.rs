//! The page's own words (`serve`): headings, labels, buttons, the states
//! of a job. Rows' reasons come from the rows' catalogue.

use super::words;

words! {
    /// What the page says, in one language.
    PageWords {
        title: "Customs declarations", "海关申报";
        profile: "Profile", "配置";
        declares_to: "declares to", "申报到";
        sandbox: "SANDBOX: nothing is declared for real", "沙箱：不会真实申报";
        upload: "Order export (CSV or XLSX, 100 MB at most)", "订单导出文件（CSV 或 XLSX，最大 100 MB）";
        drop_here: "or drop the file here", "或将文件拖放到此处";
        check: "Check the file", "检查文件";
        checking: "Checking the file… At most two files are checked at once: when others are \
                   being checked, this one waits its turn.",
                  "正在检查文件……同一时间最多检查两个文件：若有其他文件正在检查，本文件将排队等候。";
        no_profiles: "No profile: put a config (*.toml) in the --config-dir folder",
                     "没有配置：请把配置文件（*.toml）放到 --config-dir 目录中";
        validation: "Validation", "校验结果";
        read_sheet: "Read from the sheet", "读取的工作表";
        header_on_row: "column headers on row", "表头所在行";
        valid: "valid rows", "有效行";
        rejected: "rejected rows", "被拒绝的行";
        rejected_rows: "Rejected rows and their reasons", "被拒绝的行及原因";
        first_of: "Shown: the first", "显示前";
        all_in_rejected_xlsx: "every rejected row is in rejected.xlsx", "全部被拒绝的行见 rejected.xlsx";
        confirm: "I have checked the file and want to declare it", "我已检查文件，确认申报";
        profile_busy: "A run of this profile is going on: wait for it to finish, or follow it at",
            "该配置正在申报中：请等待完成，或在此查看进度";
        confirm_first: "Tick the confirmation first, then press Declare.",
            "请先勾选确认，再点击申报。";
        identical_upload: "This file is identical to the one uploaded for this profile and declared at",
            "此文件与此前为该配置上传并已申报的文件完全相同，申报时间：";
        identical_explained: "Rows already declared are not sent again; declare it again only if that is what you mean.",
            "已申报的行不会重复发送；只有确实需要时才再次申报。";
        identical_again: "I know it was declared before and want to go on",
            "我知道此文件已申报过，仍要继续";
        identical_confirm_first: "This file was declared before: tick that you want to go on, then press Declare.",
            "此文件此前已申报：请勾选“仍要继续”，再点击申报。";
        declare: "Declare", "申报";
        rows_to: "rows to", "行到";
        progress: "Progress", "进度";
        outcomes: "Rows by Alipay+'s answer", "按 Alipay+ 答复统计";
        result_code: "Answer", "答复代码";
        rows: "Rows", "行数";
        meaning: "What it means", "含义";
        api_text: "Alipay+'s own text", "Alipay+ 原文";
        downloads: "Files", "文件下载";
        login: "Sign in", "登录";
        token: "Token", "令牌";
        back: "Another file", "上传其他文件";
        row: "Row", "行";
        field: "Field", "字段";
        error: "Reason", "原因";
        jobs: "Uploads and runs", "上传与申报记录";
        past_runs: "Past runs in the ledger", "账本中的历史申报";
        inquire: "Ask for customs outcomes", "查询海关结果";
        waiting_retransmission: "corrections waiting", "待重发更正";
        declared: "declared", "已申报";
        failed: "failed", "失败";
        not_settled: "not settled", "未确定";
        customs_status: "customs", "海关状态";
        not_found: "not known to Alipay+", "Alipay+ 未查到";
        settled_by_inquiry: "found declared", "查询确认已申报";
        customs_pending: "customs pending", "海关待回执";
        customs_results: "customs results", "海关回执";
        state_validated: "checked, not declared", "已校验，未申报";
        state_running: "declaring", "申报中";
        stop: "Stop", "停止申报";
        stop_explained: "nothing more is sent; the rows not settled go to retry.xlsx",
            "不再发送；未确定的行会放入 retry.xlsx";
        uploading: "Uploading…", "正在上传……";
        upload_failed: "The upload did not get through (the file may be over 100 MB, or the network was lost). Try again.",
            "上传未成功（文件可能超过 100 MB，或网络中断）。请重试。";
        state_interrupted: "interrupted: open it to resume", "中断：打开后可继续申报";
        state_all_declared: "finished: every row declared", "完成：全部已申报";
        state_some_failed: "finished: some rows failed or were rejected",
            "完成：部分行失败或被拒";
        state_rows_left: "finished: rows left to declare again (retry.xlsx)",
            "完成：有行需重新申报（retry.xlsx）";
        state_failed: "failed", "失败";
    }
}
