"""Generate zhiku's bundled sample documents (a fictional company, 晨光物流股份有限公司).

    python samples/make_samples.py            # writes into samples/
    python samples/make_samples.py OUT_DIR

Output is deterministic: fixed metadata dates, fixed zip timestamps and reportlab's
invariant mode, so re-running produces byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
import unicodedata
import zipfile
from pathlib import Path

COMPANY = "晨光物流股份有限公司"
FIXED = dt.datetime(2024, 3, 1, 9, 0, 0)
_ZIP_TIME = (2024, 3, 1, 9, 0, 0)


def _normalize_zip(path: Path) -> None:
    """Rewrite an OOXML zip with fixed timestamps so the bytes are reproducible."""
    with zipfile.ZipFile(path) as zin:
        entries = [(info.filename, zin.read(info.filename)) for info in zin.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for name, data in entries:
            if name == "docProps/core.xml":
                data = re.sub(
                    rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)",
                    rb"\g<1>2024-03-01T09:00:00Z\g<3>",
                    data,
                )
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zout.writestr(info, data)


# --- 1. 出貨異常處理SOP.docx ---------------------------------------------------------------

SOP: list[tuple[str, str]] = [
    ("title", "出貨異常處理SOP"),
    ("para", f"{COMPANY}　文件編號：LOG-SOP-007　版本：3.0　生效日期：2024 年 3 月 1 日"),
    ("h1", "1 目的"),
    (
        "para",
        "為確保客戶訂單於出貨過程中發生之異常能即時通報、妥善處理並留存紀錄，降低客訴與"
        "貨損，特訂定本作業程序。",
    ),
    ("h1", "2 適用範圍"),
    (
        "para",
        "本程序適用於本公司各物流中心（桃園、台中、高雄）之出貨作業，包含自有車隊配送及"
        "委外貨運配送之訂單。",
    ),
    ("h1", "3 權責"),
    ("para", "3.1 倉儲課：負責揀貨、包裝及出貨前檢核，發現異常時立即通報。"),
    ("para", "3.2 物流部門：負責異常案件之受理、判定、協調補貨或重新配送。"),
    ("para", "3.3 客服部：負責通知客戶處理進度，並於案件結案後回訪客戶。"),
    ("para", "3.4 品保課：每月彙整異常統計，提出改善對策。"),
    ("h1", "4 作業程序"),
    ("para", "4.1 出貨前，倉儲課應依揀貨單逐項核對品名、料號及數量，並檢查外箱是否完整。"),
    (
        "para",
        "4.2 司機或貨運業者於交貨時，應請收貨人當場點收；收貨人拒收或簽收註記異常者，"
        "司機須拍照存證。",
    ),
    ("para", "4.3 出貨異常（含破損、短少、錯揀）需在 24 小時內通報物流部門，並於系統登錄異常單。"),
    (
        "para",
        "4.4 物流部門接獲通報後，應於 1 個工作日內完成責任判定，並安排補寄、換貨或退貨；"
        "屬貨運業者責任者，依合約向業者求償。",
    ),
    ("para", "4.5 客服部應於異常單登錄後 4 小時內主動聯繫客戶說明處理方式，並於系統記錄聯繫結果。"),
    (
        "para",
        "4.6 單一客戶同月發生 3 次以上出貨異常，或單筆損失金額超過新臺幣 5 萬元者，物流"
        "部門主管應召開檢討會議並提報總經理。",
    ),
    ("para", "各類異常之通報對象與處理時限如下表："),
    ("table", ""),
    ("h1", "5 紀錄保存"),
    ("para", "5.1 異常單、照片及檢討會議紀錄，由物流部門以電子檔保存三年。"),
    ("para", "5.2 品保課每月 10 日前完成上月異常統計報表，並公告於內部網站。"),
]
SOP_TABLE = [
    ["異常類型", "通報對象", "處理時限"],
    ["破損", "物流部門、客服部", "24 小時內通報，1 個工作日內完成判定"],
    ["短少", "物流部門、倉儲課", "24 小時內通報，2 個工作日內補寄"],
    ["錯揀", "物流部門、倉儲課", "24 小時內通報，2 個工作日內換貨"],
    ["延遲出貨", "業務部、客服部", "4 小時內通知客戶"],
    ["客戶拒收", "客服部、物流部門", "48 小時內確認退回原因"],
]


def make_sop_docx(path: Path) -> None:
    import docx

    document = docx.Document()
    props = document.core_properties
    props.title = "出貨異常處理SOP"
    props.author = "物流部"
    props.last_modified_by = "物流部"
    props.subject = "出貨異常處理標準作業程序"
    props.keywords = "出貨異常, 破損, 短少, 錯揀, SOP"
    props.comments = ""
    props.created = FIXED
    props.modified = FIXED
    props.revision = 3
    for kind, text in SOP:
        if kind == "title":
            document.add_paragraph(text, style="Title")
        elif kind == "h1":
            document.add_heading(text, level=1)
        elif kind == "para":
            document.add_paragraph(text)
        elif kind == "table":
            table = document.add_table(rows=len(SOP_TABLE), cols=len(SOP_TABLE[0]))
            table.style = "Table Grid"
            for r, row in enumerate(SOP_TABLE):
                for c, value in enumerate(row):
                    table.cell(r, c).text = value
    document.save(str(path))
    _normalize_zip(path)


# --- 2. 員工請假管理辦法.pdf -----------------------------------------------------------------

LEAVE_TITLE = "員工請假管理辦法"
LEAVE_RULES: list[tuple[str, str | list[str]]] = [
    ("chapter", "第一章　總則"),
    (
        "article",
        "第一條　本辦法依勞動基準法、勞工請假規則及性別平等工作法之規定訂定之，"
        "以規範本公司員工之請假事宜。",
    ),
    (
        "article",
        "第二條　本辦法適用於本公司所有正式員工；定期契約員工及部分工時員工，除另有約定"
        "外，準用本辦法。",
    ),
    (
        "article",
        "第三條　員工請假應於事前透過人事系統提出申請，經直屬主管核准後始得離開工作崗位；"
        "因急病或臨時事故不及事前申請者，得由本人或委託他人於當日上班時間開始後二小時內"
        "以電話或通訊軟體告知直屬主管，並於銷假上班後三個工作日內補辦請假手續。",
    ),
    ("chapter", "第二章　假別及日數"),
    (
        "article",
        "第四條　員工假別分為特別休假、病假、事假、婚假、喪假、公傷病假、產假、陪產檢及"
        "陪產假、生理假、家庭照顧假及公假。",
    ),
    (
        "article",
        [
            "第五條　員工在本公司繼續工作滿一定期間者，每年應依下列規定給予特別休假：",
            "一、六個月以上一年未滿者，三日。",
            "二、一年以上二年未滿者，七日。",
            "三、二年以上三年未滿者，十日。",
            "四、三年以上五年未滿者，每年十四日。",
            "五、五年以上十年未滿者，每年十五日。",
            "六、十年以上者，每一年加給一日，加至三十日為止。",
        ],
    ),
    (
        "article",
        "第六條　特別休假期日由員工排定，並於休假二日前提出申請；主管基於業務急迫需求，"
        "得與員工協商調整休假日期。特別休假因年度終結或契約終止而未休之日數，經勞雇雙方"
        "協商得遞延至次一年度實施；遞延之日數於次一年度終結仍未休者，雇主應發給工資。"
        "人資部應於每年十二月一日前，以書面或電子郵件通知員工其特別休假剩餘日數。",
    ),
    (
        "article",
        "第七條　員工因普通傷害、疾病或生理原因必須治療或休養者，得請普通傷病假：未住院者，"
        "一年內合計不得超過三十日；住院者，二年內合計不得超過一年；未住院傷病假與住院傷病"
        "假二年內合計不得超過一年。普通傷病假一年內未超過三十日部分，工資折半發給。請病假"
        "連續三日以上者，應檢附醫療機構出具之診斷證明書。",
    ),
    (
        "article",
        "第八條　員工因事必須親自處理者，得請事假，一年內合計不得超過十四日。事假期間不給工資。",
    ),
    (
        "article",
        "第九條　員工結婚者給予婚假八日，工資照給。婚假應自結婚之日前十日起三個月內請畢，"
        "但經主管核准者，得於一年內請畢。",
    ),
    (
        "article",
        [
            "第十條　員工遇有下列喪事者，依下列規定給予喪假，工資照給：",
            "一、父母、養父母、繼父母、配偶喪亡者，給予喪假八日。",
            "二、祖父母、子女、配偶之父母、配偶之養父母或繼父母喪亡者，給予喪假六日。",
            "三、曾祖父母、兄弟姊妹、配偶之祖父母喪亡者，給予喪假三日。",
        ],
    ),
    (
        "article",
        "第十一條　員工因職業災害而致失能、傷害或疾病者，其治療、休養期間，給予公傷病假，"
        "工資照給。",
    ),
    (
        "article",
        "第十二條　女性員工分娩前後，給予產假八星期；妊娠三個月以上流產者，給予產假四星期。"
        "員工於其配偶妊娠產檢或分娩時，給予陪產檢及陪產假七日，工資照給。",
    ),
    (
        "article",
        "第十三條　女性員工因生理日致工作有困難者，每月得請生理假一日，全年請假日數未逾三日"
        "者，不併入病假計算，其餘日數併入病假計算，工資折半發給。員工於其家庭成員預防接種、"
        "發生嚴重之疾病或其他重大事故須親自照顧時，得請家庭照顧假，其請假日數併入事假計算，"
        "全年以七日為限。",
    ),
    ("chapter", "第三章　附則"),
    (
        "article",
        "第十四條　員工請假期間，應將經辦業務交由代理人處理；未辦妥請假手續而擅離職守或"
        "請假理由不實者，以曠職論。",
    ),
    ("article", "第十五條　本辦法經董事會通過後公告施行，修正時亦同。"),
]

_FONT = "MSung-Light"
_PAGE_W, _PAGE_H = 595.2756, 841.8898  # A4 in points
_MARGIN_X = 72.0
_TOP_Y = _PAGE_H - 96
_BOTTOM_Y = 72.0
_SIZE = 13.0
_LEAD = 24.0


def _char_w(ch: str) -> float:
    return _SIZE if unicodedata.east_asian_width(ch) in "WF" else _SIZE / 2


def _wrap(text: str, first_x: float, next_x: float) -> list[tuple[float, str]]:
    """Wrap ``text`` to the right margin; continuation lines start at ``next_x``."""
    right = _PAGE_W - _MARGIN_X
    lines: list[tuple[float, str]] = []
    x0 = first_x
    cur = ""
    width = 0.0
    for ch in text:
        w = _char_w(ch)
        if x0 + width + w > right + 0.01 and cur:
            lines.append((x0, cur))
            x0, cur, width = next_x, "", 0.0
        cur += ch
        width += w
    if cur:
        lines.append((x0, cur))
    return lines


def _leave_lines() -> list[tuple[str, float, str]]:
    """(kind, x, text) lines of the regulation body; kind is 'chapter' or 'text'."""
    out: list[tuple[str, float, str]] = []
    for kind, body in LEAVE_RULES:
        if kind == "chapter":
            out.append(("chapter", _MARGIN_X, str(body)))
            continue
        parts = body if isinstance(body, list) else [body]
        head = parts[0]
        label = head.split("　", 1)[0] + "　"
        hang = _MARGIN_X + sum(_char_w(c) for c in label)
        for x, line in _wrap(head, _MARGIN_X, hang):
            out.append(("text", x, line))
        for item in parts[1:]:
            item_label = item.split("、", 1)[0] + "、"
            item_hang = hang + sum(_char_w(c) for c in item_label)
            for x, line in _wrap(item, hang, item_hang):
                out.append(("text", x, line))
    return out


def make_leave_pdf(path: Path) -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    if _FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(_FONT))
    lines = _leave_lines()
    # Paginate: page 1 starts lower (title block); a chapter heading never ends a page.
    pages: list[list[tuple[str, float, str]]] = [[]]
    y = _TOP_Y - 70
    for line in lines:
        needed = _LEAD * (2 if line[0] == "chapter" else 1)
        if line[0] == "chapter" and pages[-1]:
            needed += _LEAD
        if y - needed < _BOTTOM_Y:
            pages.append([])
            y = _TOP_Y
        pages[-1].append(line)
        y -= needed
    total = len(pages)
    c = canvas.Canvas(str(path), pagesize=(_PAGE_W, _PAGE_H), invariant=1)
    c.setTitle(LEAVE_TITLE)
    c.setAuthor(f"{COMPANY} 人力資源部")
    c.setSubject("員工請假、特別休假、病假、事假、婚假、喪假規定")
    c.setCreator("zhiku samples/make_samples.py")
    for no, page in enumerate(pages, start=1):
        c.setFont(_FONT, 9)
        c.drawString(_MARGIN_X, _PAGE_H - 50, f"{COMPANY}　{LEAVE_TITLE}")
        c.drawRightString(_PAGE_W - _MARGIN_X, _PAGE_H - 50, "HR-REG-002")
        c.line(_MARGIN_X, _PAGE_H - 56, _PAGE_W - _MARGIN_X, _PAGE_H - 56)
        y = _TOP_Y
        if no == 1:
            c.setFont(_FONT, 18)
            c.drawCentredString(_PAGE_W / 2, y, LEAVE_TITLE)
            c.setFont(_FONT, 10)
            c.drawCentredString(_PAGE_W / 2, y - 26, "中華民國一一三年二月二十日董事會修正通過")
            y -= 70
        for i, (kind, x, text) in enumerate(page):
            if kind == "chapter":
                if i > 0:
                    y -= _LEAD
                c.setFont(_FONT, 13)
                c.drawCentredString(_PAGE_W / 2, y, text)
                y -= _LEAD * 2
                continue
            c.setFont(_FONT, _SIZE)
            c.drawString(x, y, text)
            y -= _LEAD
        c.setFont(_FONT, 9)
        c.drawCentredString(_PAGE_W / 2, 40, f"第 {no} 頁 / 共 {total} 頁")
        c.showPage()
    c.save()


# --- 3. 客服常見問題.xlsx --------------------------------------------------------------------

FAQ: list[tuple[str, str]] = [
    ("客服專線是幾號？", "客服專線為 0800-088-168（免付費），手機撥打請改撥 (02) 2788-5168。"),
    (
        "客服的服務時間是什麼時候？",
        "週一至週五 08:30–17:30，週六 09:00–12:00；週日及國定假日暫停服務，可於官網留言。",
    ),
    (
        "如何查詢貨件目前的配送進度？",
        "請至官網「貨件查詢」輸入 12 碼託運單號，或加入官方 LINE 帳號 @chenguang 輸入單號查詢。",
    ),
    (
        "運費如何計算？",
        "本島一般件依材積計價，60 公分以下 130 元、90 公分以下 170 元、120 公分以下 "
        "210 元；離島另加收 100 元。",
    ),
    ("單筆訂單滿多少可以免運費？", "會員單筆訂單金額滿新臺幣 1,500 元即可享本島免運費。"),
    (
        "收到的商品有破損怎麼辦？",
        "請於簽收後 24 小時內拍照並聯繫客服，我們將於 1 個工作日內安排補寄或退款。",
    ),
    (
        "我要退貨，有什麼期限嗎？",
        "自收到商品隔日起 7 日內可申請退貨，商品須保持全新及完整包裝；生鮮及客製化商品不適用。",
    ),
    (
        "退貨的運費由誰負擔？",
        "因商品瑕疵或寄錯商品所致之退貨，運費由本公司負擔；其他原因之退貨，"
        "退貨運費由客戶自行負擔。",
    ),
    (
        "退款多久會入帳？",
        "退貨商品驗收完成後 5 個工作日內退款；信用卡退刷依發卡銀行作業約 7–14 天。",
    ),
    (
        "可以指定配送時段嗎？",
        "可以，提供上午（09:00–13:00）、下午（13:00–18:00）及晚間（18:00–21:00）"
        "三個時段，節假日前後可能無法保證。",
    ),
    (
        "配送地址填錯了可以修改嗎？",
        "貨件尚未出庫前可於官網「我的訂單」修改；已出庫者請來電客服，改址可能另收 50 元手續費。",
    ),
    ("有提供超商取貨嗎？", "有，可選擇 7-ELEVEN、全家或萊爾富門市取貨，貨到門市後保留 7 天。"),
    (
        "可以開立統一編號發票嗎？",
        "可以，請於結帳時填寫統一編號及公司抬頭，電子發票將寄送至訂購人信箱。",
    ),
    (
        "沒有收到取貨通知怎麼辦？",
        "請先確認手機號碼是否正確並檢查簡訊攔截設定，仍未收到請來電客服協助查詢。",
    ),
    (
        "企業客戶如何申請月結？",
        "請填寫「企業月結申請書」並附公司登記證明，寄至 biz@chenguang-logistics.example，"
        "業務專員將於 3 個工作日內與您聯繫。",
    ),
]


def make_faq_xlsx(path: Path) -> None:
    import openpyxl
    from openpyxl.styles import Alignment, Font

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "常見問題"
    ws.append(["問題", "答案"])
    for q, a in FAQ:
        ws.append([q, a])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    ws.column_dimensions["A"].width = 32
    ws.column_dimensions["B"].width = 90
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    wb.properties.title = "客服常見問題"
    wb.properties.creator = "客服部"
    wb.properties.lastModifiedBy = "客服部"
    wb.properties.created = FIXED
    wb.properties.modified = FIXED
    wb.save(str(path))
    _normalize_zip(path)


# --- 4. IT帳號申請.md -------------------------------------------------------------------------

IT_MD = """# IT 帳號申請與管理說明

本說明適用於晨光物流股份有限公司全體員工，內容涵蓋電腦登入帳號、電子郵件、ERP 及倉儲管理
系統（WMS）帳號之申請、異動與停用。

## 申請流程

所有帳號一律透過「IT 服務入口網站」（https://it.chenguang-logistics.example）提出申請，
紙本申請單自 2023 年 7 月起停止受理。

### 新進人員

1. 人資部於新進人員報到日前 **3 個工作日** 在入口網站建立「新進人員帳號需求單」。
2. 直屬主管勾選所需系統（電子郵件、ERP、WMS、VPN）並核准。
3. 資訊部於報到日前一天完成開通，帳號密碼以密封信封交由人資部於報到當日轉交。
4. 新進人員首次登入後須立即變更密碼並設定多重要素驗證（MFA）。

### 在職人員權限異動

調職或職務變更時，由新單位主管提出「權限異動單」；原單位權限於生效日起 5 個工作日內移除。

### 離職人員

人資部應於離職生效日前 1 個工作日通知資訊部；帳號於離職當日下班後停用，電子郵件保留
90 天後刪除，期間得設定自動回覆及轉寄給職務代理人。

## 各系統開通時間

| 系統 | 申請單 | 核准主管 | 開通時間 |
|---|---|---|---|
| 電腦登入帳號 | 新進人員帳號需求單 | 直屬主管 | 1 個工作日 |
| 電子郵件 | 新進人員帳號需求單 | 直屬主管 | 1 個工作日 |
| ERP | 系統權限申請單 | 部門主管及財務部 | 3 個工作日 |
| WMS 倉儲管理系統 | 系統權限申請單 | 物流部門主管 | 2 個工作日 |
| VPN 遠端連線 | VPN 申請單 | 部門主管及資訊部主管 | 3 個工作日 |

## 密碼規則

- 密碼長度至少 **12 個字元**，須包含大寫字母、小寫字母、數字及符號其中三類。
- 密碼每 180 天須變更一次，且不得與前 5 次使用過的密碼相同。
- 連續輸入錯誤 5 次，帳號將鎖定 30 分鐘；如需提前解鎖請聯繫資訊部服務台。
- 禁止將密碼寫在便條紙、共用帳號或以電子郵件傳送密碼。

### 多重要素驗證（MFA）

電子郵件、VPN 及 ERP 皆強制啟用 MFA，請於手機安裝 Microsoft Authenticator。更換手機時，
請先至入口網站「我的裝置」移除舊裝置再重新綁定。

## 聯絡資訊

資訊部服務台分機 **2100**，服務時間為週一至週五 08:00–18:00；非上班時間之緊急系統問題請撥
值班手機 0912-345-678。
"""


def make_it_md(path: Path) -> None:
    path.write_bytes(IT_MD.encode("utf-8"))


# --- 5. 舊版公告.txt (Big5) ---------------------------------------------------------------------

OLD_NOTICE = f"""{COMPANY}　公告

發文日期：中華民國一○二年五月二十日
發文字號：晨物人字第一○二○五二○號

主旨：本公司自一○二年六月一日起實施週休二日制度，請全體同仁配合辦理。

說明：
一、依勞動基準法相關規定及本公司一○二年第三次董事會決議辦理。
二、實施後上班時間為週一至週五上午八時三十分至下午五時三十分，中午休息一小時；
週六、週日為休息日。
三、物流中心輪班人員之排班方式，由各物流中心主管另行公告，每月排休不得少於八日。
四、原週六上午之客服服務暫停，客服專線改於週一至週五提供服務。

如有疑問，請洽人事課（分機 1201）。

人事課　敬啟
"""


def make_old_notice(path: Path) -> None:
    path.write_bytes(OLD_NOTICE.replace("\n", "\r\n").encode("cp950"))


def main(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = [
        (out_dir / "出貨異常處理SOP.docx", make_sop_docx),
        (out_dir / "員工請假管理辦法.pdf", make_leave_pdf),
        (out_dir / "客服常見問題.xlsx", make_faq_xlsx),
        (out_dir / "IT帳號申請.md", make_it_md),
        (out_dir / "舊版公告.txt", make_old_notice),
    ]
    for path, fn in outputs:
        fn(path)
    return [p for p, _ in outputs]


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    for written in main(target):
        print(written)
