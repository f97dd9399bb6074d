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
        no_profiles: "No profile yet: IT puts the configs that declare for real in the profiles folder; to try a file, make a sandbox profile below.",
                     "还没有配置：真实申报的配置由 IT 放入配置目录；如需试用文件，请在下方新建沙箱配置。";
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
        sheet_title: "Which sheet holds the orders?", "订单在哪个工作表？";
        sheet_several: "Several sheets of this workbook have order columns. Choose the one to declare.",
            "此工作簿有多个工作表包含订单列，请选择要申报的工作表。";
        sheet_missing: "The profile reads a sheet this workbook does not have:",
            "配置指定的工作表在此工作簿中不存在：";
        sheet_choose: "Choose the sheet that holds the orders.", "请选择包含订单的工作表。";
        use_sheet: "Read this sheet", "读取此工作表";
        columns_title: "Which column is which?", "匹配列";
        columns_explained: "The file's column headers do not match the profile. For each field, choose the column of your file that holds it. The choice is remembered for files with these headers.",
            "文件的列标题与配置不一致。请为每个字段选择文件中对应的列。此选择会被记住，下次相同列标题的文件将直接通过。";
        your_column: "Your column", "您的列";
        values_in_it: "Values in it", "列中的值";
        not_in_file: "— not in the file —", "— 文件中没有 —";
        needed_by_every_row: "needed by every row", "每行必填";
        still_missing: "Still missing (choose a column for each):", "尚未匹配（请为每项选择一列）：";
        chosen_twice: "One column is chosen for two fields:", "同一列被选给了两个字段：";
        use_columns: "Use these columns", "使用这些列";
        no_such_upload: "No such upload or run: it may have been removed. Start again from the home page.",
            "找不到该上传或申报记录：可能已被删除。请从首页重新开始。";
        no_such_profile: "No such profile: it may have been removed from the profiles folder.",
            "找不到该配置：可能已从配置目录中删除。";
        no_such_run: "The ledger knows no such run.", "账本中没有这次申报。";
        no_such_file: "No such file for this run.", "这次申报没有该文件。";
        file_not_yet: "That file is not there yet: it is written when the run ends.",
            "该文件尚未生成：申报结束时才会写出。";
        profile_not_ready: "This profile cannot declare yet: IT has to finish its endpoint and keys.",
            "此配置尚不能申报：需要 IT 完成其申报地址与密钥的配置。";
        run_cannot_start: "The run could not start:", "申报未能开始：";
        inquiry_failed: "The inquiry could not be made:", "查询未能完成：";
        upload_broken: "The upload did not arrive whole (or did not come from this page): try again from the home page.",
            "上传内容不完整（或并非来自本页面）：请从首页重试。";
        from_this_page_only: "Refused: a request that changes something must come from this page.",
            "已拒绝：会改变数据的请求必须来自本页面。";
        too_many_sign_ins: "Too many wrong tokens: wait a minute before signing in again.",
            "令牌错误次数过多：请等待一分钟后再登录。";
        token_wrong: "The token is not right.", "令牌不正确。";
        sheet_fixed: "This is one sheet of a workbook declared sheet by sheet: its sheet cannot be changed.",
            "这是按工作表申报的工作簿中的一个工作表，不能更换工作表。";
        sheet_not_declared: "A sheet could not be declared: open it to see why.", "有工作表未能申报：请打开该工作表查看原因。";
        all_sheets: "All the order sheets, as one job (rows numbered per sheet)", "全部订单工作表，作为一个任务（行号按各工作表）";
        sheets: "Sheets", "工作表";
        sheet: "Sheet", "工作表";
        part_of: "A sheet of", "所属任务";
        open_sheet: "open", "打开";
        all_sheets_declare: "all sheets", "全部工作表";
        new_sandbox_profile: "— a new sandbox profile, to try this file —", "— 新建沙箱配置，用此文件试用 —";
        new_profile_name: "Name of the new sandbox profile", "新沙箱配置的名称";
        header_twice_in_file: "The file has two columns with this header: rename one in the export (or in Excel) and upload it again:",
            "文件中有两列使用同一个列标题：请在导出文件（或 Excel）中重命名其中一列后重新上传：";
        fix_title: "Fix the rejected rows", "修正被拒绝的行";
        fix_here: "Fix them on this page", "在网页上修正";
        fix_explained: "Correct the cells marked in red and save the row: it is checked again with every rule. Fixed rows join the rows to declare.",
            "修改标红的单元格并保存该行：系统会按全部规则重新校验。修正后的行会加入待申报的行。";
        problems_by_kind: "Problems by kind", "按问题类型";
        all_kinds: "All problems", "全部问题";
        save_row: "Save row", "保存此行";
        keep_empty: "leave empty to keep it", "留空则不修改";
        find_replace: "Find and replace in a column of the rejected rows", "在被拒绝行的某列中查找替换";
        column: "Column", "列";
        find: "Find", "查找";
        replace_with: "Replace with", "替换为";
        replace: "Replace", "替换";
        no_rejected_left: "No rejected rows left.", "已没有被拒绝的行。";
        previous_page: "Previous", "上一页";
        next_page: "Next", "下一页";
        page_of: "Page", "页码";
        edit_too_long: "A corrected value is too long (512 characters at most).", "修改的值过长（最多 512 个字符）。";
        edit_too_many: "Too many cells are corrected for one file: correct the rest in rejected.xlsx.",
            "此文件修改的单元格过多：其余请在 rejected.xlsx 中修改。";
        edit_after_declare: "The file has been declared: it can no longer be changed here.",
            "文件已申报，不能再在此修改。";
        back_to_job: "Back to the validation", "返回校验结果";
    }
}
