"""Generator of Taiwanese personal data for tests and ``bench/pii.py``.

Valid and invalid identifiers of every type, embedded in realistic zh-TW sentences,
tables and chat logs, plus look-alikes (order and invoice numbers, product codes,
amounts, plain dates, tracking numbers). Deterministic for a given seed.

The check digits here are computed with code written independently of
``zhiku.pii.validators`` (a different formulation of the same official rules), so a
mistake in one is caught by the other.

    from tests.pii_gen import PiiGen
    g = PiiGen(seed=1)
    g.tw_id()                      # 'K223456781'
    s = g.sentence("mobile")       # Sample(text=..., spans=[(start, end, 'mobile')])
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

# 內政部: letters in the order of their codes 10, 11, …, 35.
_ID_LETTER_ORDER = "ABCDEFGHJKLMNPQRSTUVXYWZIO"
ID_CODE = {ch: 10 + i for i, ch in enumerate(_ID_LETTER_ORDER)}
FULL_WIDTH = str.maketrans({**{chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}, " ": "\u3000"})


def to_full_width(s: str) -> str:
    return s.translate(FULL_WIDTH)


# --- independent check digits ------------------------------------------------------


def id_check_digit(body9: str) -> int:
    """Check digit for letter + 8 digits (national ID and 2021 resident certificate)."""
    code = ID_CODE[body9[0]]
    digits = [code // 10, code % 10] + [int(c) for c in body9[1:]]
    weights = [1, 9, 8, 7, 6, 5, 4, 3, 2, 1]
    s = sum(d * w for d, w in zip(digits, weights, strict=False))
    return (10 - s % 10) % 10


def arc_old_check_digit(body9: str) -> int:
    """Check digit for the pre-2021 resident certificate (two letters + 7 digits)."""
    code = ID_CODE[body9[0]]
    second = ID_CODE[body9[1]] % 10
    digits = [code // 10, code % 10, second] + [int(c) for c in body9[2:]]
    weights = [1, 9, 8, 7, 6, 5, 4, 3, 2, 1]
    s = sum(d * w for d, w in zip(digits, weights, strict=False))
    return (10 - s % 10) % 10


def ubn_ok(number: str) -> bool:
    """財政部 wording: add the digits of each product; when the seventh digit is 7 its
    product 28 gives 10, which counts as 1 (Z1) or 0 (Z2); valid when Z1 or Z2 is a
    multiple of 5."""
    z = 0
    seventh_seven = number[6] == "7"
    for i, w in enumerate((1, 2, 1, 2, 1, 2, 4, 1)):
        tens, ones = divmod(int(number[i]) * w, 10)
        if i == 6 and seventh_seven:
            continue
        z += tens + ones
    if seventh_seven:
        return (z + 1) % 5 == 0 or z % 5 == 0
    return z % 5 == 0


def luhn_check_digit(body: str) -> int:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:  # doubled: rightmost digit of the body sits next to the check
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return (10 - total % 10) % 10


# --- data --------------------------------------------------------------------------

SURNAMES_WEIGHTED = (
    "陳" * 11
    + "林" * 8
    + "黃" * 6
    + "張" * 5
    + "李" * 5
    + "王" * 4
    + "吳" * 4
    + "劉" * 3
    + "蔡" * 3
    + "楊" * 3
    + "許謝郭洪曾邱廖賴徐周葉蘇莊江呂何蕭羅高潘簡朱鍾彭游詹胡施沈余盧"
    "梁趙顏柯翁魏孫戴范方宋鄧杜傅侯曹薛丁卓阮馬董溫唐藍石蔣古紀姚連馮歐程湯田康姜白汪鄒尤"
)
COMPOUND = ("歐陽", "張簡", "范姜", "司馬")
# Given-name characters: mostly frequent ones, some rarer ones the detector's list
# may not know (the detector must not be tested only on its own vocabulary).
GIVEN_POOL = (
    "明華美文志俊建家偉雅怡婷宏豪傑君芳玲欣宜佳瑋琪慧惠淑秀麗玉珍珊瑜馨萱庭廷翔宇昱哲凱誠"
    "信仁安嘉彥柏冠承育博軒睿恩晴涵妤瑄筑霖賢國榮德輝忠正雄強龍英蘭梅春月雪霞琳蓉靜潔真"
    "思晨宣子祥瑞福順興光中立政民昌盛漢勝義智達維聖耀銘鈞鴻群毅峰凡彬斌浩宗裕良泰祐佑"
    "姵竑甯璦媗翎薏蓓鍹錞靚芮綵紜"
)
CITIES = {
    "臺北市": (
        ("中正區", "大安區", "信義區", "松山區", "中山區", "內湖區", "士林區", "萬華區"),
        (
            "忠孝東路",
            "復興南路",
            "信義路",
            "羅斯福路",
            "重慶南路",
            "南京東路",
            "敦化南路",
            "基隆路",
            "八德路",
            "承德路",
        ),
    ),
    "新北市": (
        ("板橋區", "中和區", "永和區", "新莊區", "三重區", "新店區", "汐止區"),
        ("文化路", "中山路", "中正路", "民生路", "中華路", "永貞路", "民權路"),
    ),
    "桃園市": (
        ("桃園區", "中壢區", "平鎮區", "八德區", "龜山區"),
        ("中正路", "復興路", "中山東路", "環中東路", "介壽路"),
    ),
    "臺中市": (
        ("西屯區", "北屯區", "南屯區", "西區", "豐原區", "大里區"),
        ("臺灣大道", "文心路", "公益路", "崇德路", "中港路", "五權西路"),
    ),
    "臺南市": (
        ("東區", "中西區", "永康區", "安平區", "新營區"),
        ("中華東路", "民族路", "府前路", "健康路", "成功路"),
    ),
    "高雄市": (
        ("苓雅區", "三民區", "前鎮區", "左營區", "鳳山區", "鼓山區"),
        ("中正路", "博愛路", "中山二路", "自由路", "建國路", "九如路"),
    ),
    "新竹縣": (("竹北市", "竹東鎮", "湖口鄉"), ("光明六路", "縣政九路", "中興路")),
    "彰化縣": (("彰化市", "員林市", "鹿港鎮"), ("中山路", "光復路", "民族路")),
    "花蓮縣": (("花蓮市", "吉安鄉", "新城鄉"), ("中山路", "中華路", "中央路")),
    "台中市": (("北區", "南區"), ("三民路", "學士路")),
}
ZIPS = ("100", "106", "110", "220", "235", "330", "407", "700", "802", "302", "500", "970")
COMPANIES = (
    "台灣積體電路製造股份有限公司",
    "宏遠科技股份有限公司",
    "大同文具行",
    "晨光顧問有限公司",
    "綠野餐飲股份有限公司",
    "光華資訊社",
)
COMPANY_DOMAINS = (
    "acme.com.tw",
    "hongyuan.com.tw",
    "greenfield.tw",
    "moi.gov.tw",
    "ntu.edu.tw",
    "example.org.tw",
    "chenguang.com",
)
FREE_DOMAINS = ("gmail.com", "yahoo.com.tw", "hotmail.com", "outlook.com", "msa.hinet.net")
ROLE_LOCALS = (
    "service",
    "info",
    "support",
    "contact",
    "hr",
    "noreply",
    "service.tw",
    "tw-support",
    "sales",
    "客服",
    "invoice",
    "cs",
)
PINYIN = ("wang", "chen", "lin", "huang", "chang", "lee", "wu", "liu", "tsai", "yang", "hsu")
GIVEN_PINYIN = (
    "xiaoming",
    "meihua",
    "zhiwei",
    "yating",
    "junhao",
    "amy",
    "jason",
    "kevin",
    "vivian",
    "peggy",
    "tony",
    "iris",
)


@dataclass
class Sample:
    """A text and its gold personal-data spans ``(start, end, type)``."""

    text: str
    spans: list[tuple[int, int, str]] = field(default_factory=list)
    kind: str = "positive"  # positive | lookalike | invalid


_SLOT_RE = re.compile(r"\{(\w+)\}")


class PiiGen:
    def __init__(self, seed: int = 0, full_width_rate: float = 0.1) -> None:
        self.r = random.Random(seed)
        self.full_width_rate = full_width_rate

    # --- primitives ----------------------------------------------------------------

    def digits(self, n: int) -> str:
        return "".join(self.r.choice("0123456789") for _ in range(n))

    def _width(self, s: str) -> str:
        return to_full_width(s) if self.r.random() < self.full_width_rate else s

    # --- identifiers ---------------------------------------------------------------

    def tw_id(self, valid: bool = True) -> str:
        body = self.r.choice(_ID_LETTER_ORDER) + self.r.choice("12") + self.digits(7)
        check = id_check_digit(body)
        if not valid:
            check = (check + self.r.randint(1, 9)) % 10
        return body + str(check)

    def arc(self, valid: bool = True, fmt: str | None = None) -> str:
        fmt = fmt or self.r.choice(("old", "new"))
        if fmt == "new":
            body = self.r.choice(_ID_LETTER_ORDER) + self.r.choice("89") + self.digits(7)
            check = id_check_digit(body)
        else:
            body = self.r.choice(_ID_LETTER_ORDER) + self.r.choice("ABCD") + self.digits(7)
            check = arc_old_check_digit(body)
        if not valid:
            check = (check + self.r.randint(1, 9)) % 10
        return body + str(check)

    def ubn(self, valid: bool = True) -> str:
        while True:
            body = self.digits(7)
            if body[0] == "0" and self.r.random() < 0.7:
                continue
            options = [d for d in "0123456789" if ubn_ok(body + d) == valid]
            if options:
                return body + self.r.choice(options)

    def mobile(self) -> str:
        d = "09" + self.digits(8)
        a, b, c = d[:4], d[4:7], d[7:]
        forms = (
            f"{a}-{b}-{c}",
            f"{a}{b}{c}",
            f"{a} {b} {c}",
            f"{a}-{b}{c}",
            f"({a}){b}-{c}",
            f"+886-{a[1:]}-{b}-{c}",
            f"+886 {a[1:]} {b} {c}",
            f"+886{a[1:]}{b}{c}",
        )
        return self._width(self.r.choice(forms))

    def landline(self) -> str:
        kind = self.r.random()
        if kind < 0.15:
            return self._width(f"080{self.r.choice('09')}-{self.digits(3)}-{self.digits(3)}")
        area, local_len = self.r.choice(
            (
                ("02", 8),
                ("02", 8),
                ("02", 8),
                ("03", 7),
                ("04", 8),
                ("04", 7),
                ("05", 7),
                ("06", 7),
                ("07", 7),
                ("08", 7),
                ("037", 6),
                ("049", 7),
                ("089", 6),
            )
        )
        local = self.r.choice("23456789") + self.digits(local_len - 1)
        h = len(local) - 4
        a, b = local[:h], local[h:]
        forms = [f"({area}){a}-{b}", f"{area}-{a}-{b}", f"{area}-{local}", f"({area}) {a} {b}"]
        if area == "02":
            forms += [f"{area}{local}", f"+886-2-{a}-{b}"]
        s = self.r.choice(forms)
        if self.r.random() < 0.2:
            s += self.r.choice(("#", " 分機 ", " 轉 ", " ext. ")) + self.digits(
                self.r.randint(2, 4)
            )
        return self._width(s)

    def email(self, role: bool | None = None) -> str:
        role = self.r.random() < 0.3 if role is None else role
        if role:
            return f"{self.r.choice(ROLE_LOCALS)}@{self.r.choice(COMPANY_DOMAINS)}"
        first, last = self.r.choice(GIVEN_PINYIN), self.r.choice(PINYIN)
        local = self.r.choice(
            (
                f"{first}.{last}",
                f"{last}{self.digits(2)}",
                f"{first}_{last}",
                f"{last}.{first}",
                f"{first}{self.r.randint(1970, 2005)}",
            )
        )
        domain = self.r.choice(FREE_DOMAINS + COMPANY_DOMAINS[:3])
        return f"{local}@{domain}"

    def credit_card(self, valid: bool = True) -> str:
        net = self.r.choice(("visa", "visa", "mc", "mc2", "jcb", "amex", "unionpay"))
        if net == "visa":
            body = "4" + self.digits(14)
        elif net == "mc":
            body = str(self.r.randint(51, 55)) + self.digits(13)
        elif net == "mc2":
            body = str(self.r.randint(2221, 2720)) + self.digits(11)
        elif net == "jcb":
            body = str(self.r.randint(3528, 3589)) + self.digits(11)
        elif net == "amex":
            body = self.r.choice(("34", "37")) + self.digits(12)
        else:
            body = "62" + self.digits(13)
        check = luhn_check_digit(body)
        if not valid:
            check = (check + self.r.randint(1, 9)) % 10
        num = body + str(check)
        if len(num) == 15:
            forms = (f"{num[:4]} {num[4:10]} {num[10:]}", f"{num[:4]}-{num[4:10]}-{num[10:]}", num)
        else:
            g = [num[i : i + 4] for i in range(0, 16, 4)]
            forms = (" ".join(g), "-".join(g), num)
        return self._width(self.r.choice(forms))

    def nhi_card(self) -> str:
        num = "0000" + self.digits(8)
        return self.r.choice(
            (num, f"{num[:4]} {num[4:8]} {num[8:]}", f"{num[:4]}-{num[4:8]}-{num[8:]}")
        )

    def passport(self) -> str:
        kind = self.r.random()
        if kind < 0.6:
            return self.r.choice("123") + self.digits(8)  # R.O.C. passport: 9 digits
        if kind < 0.8:
            return self.r.choice("EGKP") + self.digits(8)
        return self.r.choice(("TK", "TR", "MZ", "EA")) + self.digits(7)

    def bank_account(self) -> str:
        n = self.r.choice((10, 12, 13, 14, 14, 16))
        num = self.r.choice("0123456789") + self.digits(n - 1)
        forms = [
            num,
            f"{num[:3]}-{num[3:5]}-{num[5:-1]}-{num[-1]}",
            f"{num[:4]}-{num[4:8]}-{num[8:]}",
        ]
        if n == 14:
            forms.append(f"{num[:7]}-{num[7:]}")  # 郵局: 局號-帳號
        return self.r.choice(forms)

    def birthday(self) -> str:
        y, m, d = self.r.randint(1940, 2010), self.r.randint(1, 12), self.r.randint(1, 28)
        roc = y - 1911
        forms = (
            f"{y}/{m:02d}/{d:02d}",
            f"{y}-{m:02d}-{d:02d}",
            f"{y}年{m}月{d}日",
            f"民國{roc}年{m}月{d}日",
            f"{roc}/{m:02d}/{d:02d}",
            f"{roc:03d}.{m:02d}.{d:02d}",
            f"{y}.{m}.{d}",
            f"{roc:03d}{m:02d}{d:02d}",
        )
        return self.r.choice(forms)

    def address(self) -> str:
        city = self.r.choice(list(CITIES))
        dists, roads = CITIES[city]
        parts = []
        if self.r.random() < 0.2:
            parts.append(self.r.choice(ZIPS))
        with_city = self.r.random() < 0.85
        if with_city:
            parts.append(city)
        parts.append(self.r.choice(dists))
        parts.append(self.r.choice(roads))
        if self.r.random() < 0.4:
            parts.append(self.r.choice("一二三四五") + "段")
        if self.r.random() < 0.4:
            parts.append(f"{self.r.randint(1, 300)}巷")
            if self.r.random() < 0.4:
                parts.append(f"{self.r.randint(1, 30)}弄")
        no = f"{self.r.randint(1, 500)}"
        if self.r.random() < 0.15:
            no += f"之{self.r.randint(1, 9)}"
        parts.append(no + "號")
        if self.r.random() < 0.5:
            floor = self.r.randint(2, 25)
            parts.append(
                self.r.choice(
                    (f"{floor}樓", "三樓", f"{floor}F", f"{floor}樓之{self.r.randint(1, 5)}")
                )
            )
        s = "".join(parts)
        if self.r.random() < self.full_width_rate:
            s = re.sub(r"\d", lambda m: to_full_width(m.group()), s)
        return s

    def name(self) -> str:
        if self.r.random() < 0.03:
            return self.r.choice(COMPOUND) + "".join(
                self.r.choices(GIVEN_POOL, k=self.r.choice((1, 2)))
            )
        k = 2 if self.r.random() < 0.88 else 1
        return self.r.choice(SURNAMES_WEIGHTED) + "".join(self.r.choices(GIVEN_POOL, k=k))

    def value(self, type_: str) -> str:
        return getattr(self, type_)()

    # --- look-alikes ---------------------------------------------------------------

    def order_number(self) -> str:
        return self.r.choice(
            (
                self.r.choice("ABCDEFGHJKLMNPQRSTUVXYWZ") + self.r.choice("12") + self.digits(8),
                f"TW{self.r.randint(2019, 2025)}{self.digits(4)}{self.digits(3)}",
                f"ORD-{self.r.randint(2019, 2025)}-{self.digits(6)}",
                self.digits(8),
                self._yyyymmdd() + self.digits(4),
            )
        )

    def _yyyymmdd(self) -> str:
        y, m, d = self.r.randint(2019, 2025), self.r.randint(1, 12), self.r.randint(1, 28)
        return f"{y}{m:02d}{d:02d}"

    def invoice_number(self) -> str:
        letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
        return self.r.choice(letters) + self.r.choice(letters) + self.digits(8)

    def product_code(self) -> str:
        return self.r.choice(
            (
                "09" + self.digits(8),
                f"09{self.digits(2)}-{self.digits(3)}-{self.digits(3)}",
                f"{self.r.choice('ABCXYZ')}{self.digits(9)}",
                f"SKU{self.digits(8)}",
                f"{self.digits(4)}-{self.digits(4)}-{self.digits(4)}",
            )
        )

    def tracking_number(self) -> str:
        return self.r.choice(
            (self.digits(12), self.digits(16), "4" + self.digits(15), self.digits(13))
        )

    def amount(self) -> str:
        v = self.r.randint(1000, 99_999_999)
        return self.r.choice((f"{v:,}", str(v), f"NT${v:,}"))

    def plain_date(self) -> str:
        y, m, d = self.r.randint(2015, 2025), self.r.randint(1, 12), self.r.randint(1, 28)
        return self.r.choice(
            (
                f"{y}/{m:02d}/{d:02d}",
                f"{y}-{m:02d}-{d:02d}",
                f"{y}年{m}月{d}日",
                f"{y - 1911}/{m:02d}/{d:02d}",
                f"{y}{m:02d}{d:02d}",
            )
        )

    # --- sentences -----------------------------------------------------------------

    TEMPLATES: dict[str, tuple[str, ...]] = {
        "tw_id": (
            "客戶身分證字號{tw_id}，請協助查詢保單。",
            "身分證：{tw_id}",
            "申請人 ID：{tw_id}，已完成核對。",
            "請提供您的身分證字號（例如 {tw_id}）以便驗證。",
            "他說身分證號碼是 {tw_id} 沒錯",
            "報名資料：{name}／{tw_id}／{mobile}",
            "{tw_id}",
        ),
        "arc": (
            "外籍勞工居留證號 {arc}，效期至明年。",
            "統一證號：{arc}",
            "ARC No. {arc}",
            "移工 {arc} 已完成體檢",
            "新式居留證號碼{arc}請更新至系統",
        ),
        "ubn": (
            "發票請開統編 {ubn}，抬頭{company}。",
            "統一編號：{ubn}",
            "{company}（統編{ubn}）",
            "買受人統一編號 {ubn}",
            "公司統編是{ubn}，謝謝",
            "廠商資料：{company} 統一編號{ubn}",
        ),
        "mobile": (
            "我的手機是{mobile}，請盡快回電。",
            "聯絡電話：{mobile}",
            "有問題請撥 {mobile} 找我",
            "手機 {mobile}（白天可接）",
            "請以簡訊通知 {mobile}",
            "行動電話{mobile}",
            "{name}先生的電話是{mobile}",
            "LINE 同手機號碼 {mobile}",
        ),
        "landline": (
            "客服專線 {landline}，週一至週五 9:00–18:00。",
            "住家電話：{landline}",
            "總機 {landline}，傳真另行提供。",
            "請來電 {landline} 洽詢",
            "TEL: {landline}",
            "門市電話{landline}",
        ),
        "email": (
            "請寄信到 {email} 聯繫。",
            "E-mail：{email}",
            "客戶信箱 {email} 已退信",
            "聯絡窗口 {email}",
            "來信請寄{email}，我們將儘速回覆",
            "信箱：{email}；電話：{mobile}",
        ),
        "credit_card": (
            "信用卡號 {credit_card}，有效期限 12/27。",
            "刷卡卡號：{credit_card}",
            "客戶提供的卡號是{credit_card}",
            "請停用卡片 {credit_card}",
            "Card No. {credit_card}",
        ),
        "nhi_card": (
            "健保卡號 {nhi_card}",
            "請出示健保卡，卡號{nhi_card}",
            "健保IC卡號碼：{nhi_card}",
            "病患健保卡 {nhi_card} 已讀取",
        ),
        "passport": (
            "護照號碼 {passport}，效期 2030 年。",
            "Passport No.: {passport}",
            "旅客護照：{passport}",
            "請核對護照號{passport}與機票姓名",
        ),
        "bank_account": (
            "請匯款至 國泰世華銀行(013) 帳號 {bank_account}",
            "退款帳戶：{bank_account}",
            "郵局帳號{bank_account}，戶名{name}",
            "薪資轉帳帳號 {bank_account}",
            "匯入帳號：{bank_account}",
        ),
        "birthday": (
            "出生日期：{birthday}",
            "生日 {birthday}",
            "客戶生日是{birthday}，可享壽星優惠",
            "{name}，{birthday}生，住{address}",
            "DOB: {birthday}",
            "出生年月日 {birthday}",
        ),
        "address": (
            "收件地址：{address}",
            "我住在{address}，請送到一樓管理室。",
            "戶籍地址 {address}",
            "寄送至{address}",
            "通訊地址：{address}（{name} 收）",
            "公司地址：{address}",
            "門市位於{address}，歡迎蒞臨。",
        ),
        "name": (
            "姓名：{name}",
            "客戶{name}來電詢問退貨流程。",
            "感謝{name}小姐的來信",
            "{name}先生您好，",
            "聯絡人：{name}，電話 {mobile}",
            "病患 {name} 於今日回診",
            "收件人 {name}",
            "申請人：{name}（身分證 {tw_id}）",
            "會員{name}反映商品瑕疵",
        ),
    }

    LOOKALIKE_TEMPLATES: tuple[str, ...] = (
        "訂單編號 {order_number} 已出貨。",
        "發票號碼：{invoice_number}",
        "料號 {product_code} 缺貨中",
        "型號{product_code}，保固一年",
        "金額 {amount} 元已入帳",
        "共計 {amount} 元",
        "會議日期 {plain_date}，地點三樓會議室",
        "追蹤號碼 {tracking_number}",
        "物流單號{tracking_number}",
        "公告日期：{plain_date}",
        "{plain_date} 10:30 系統維護",
        "版本 3.12.{small}，建置 {digits8}",
        "瀏覽次數 {digits8} 次",
        "本案文號第{digits9}號",
        "案號 {digits8}，請於期限內回覆",
        "商品條碼 {ean13}",
        "序號：{invoice_number}",
        "訂單 {order_number} 金額 {amount}",
        "第 {small} 號會議室",
        "請於 {plain_date} 前繳費，逾期加收 {small}%",
        "批號 {digits12} 的產品已召回",
        "收據編號 {digits12}",
        "IP 192.168.{small}.{small}",
        # no context word at all: shape and checksum are all there is to go on
        "{order_number} 已於今日出貨",
        "請參考 {product_code} 的說明",
        # name traps: honorifics, role words and surname-like characters without a name
        "這位先生請稍候，我們馬上處理。",
        "各位先生女士大家好",
        "客戶表示商品已收到",
        "會員可享九折優惠",
        "客戶服務中心週末不營業",
        "病患須知請見背面",
        "客戶高度關注退款進度",
        "會員方案將於下月調整",
        "用戶數量已超過 {small} 萬",
        "客戶林口門市取貨",
        "學生證遺失請至教務處補辦",
        "員工旅遊訂在十月",
        "客戶成功團隊將與您聯繫",
        "民眾可至各區公所洽詢",
        "乘客請勿在車廂內飲食",
        "那位小姐剛剛離開",
        "高先生的訂單",
        "旅客服務中心位於一樓",
        "家長會將於週六召開",
        "會員關係管理系統升級",
        "住戶管理委員會公告",
        "承租人應於每月五日前繳納租金",
        "客戶白天不方便接電話",
    )

    INVALID_TEMPLATES: dict[str, tuple[str, ...]] = {
        "tw_id": ("身分證字號 {bad_tw_id}", "客戶 ID：{bad_tw_id}"),
        "arc": ("居留證號 {bad_arc}",),
        "ubn": ("統一編號：{bad_ubn}", "統編 {bad_ubn}"),
        "credit_card": ("信用卡號 {bad_card}", "卡號：{bad_card}"),
    }

    def _fill(self, template: str, kind: str) -> Sample:
        parts: list[str] = []
        spans: list[tuple[int, int, str]] = []
        pos = 0
        length = 0
        for m in _SLOT_RE.finditer(template):
            lit = template[pos : m.start()]
            parts.append(lit)
            length += len(lit)
            slot = m.group(1)
            value, typ = self._slot(slot)
            if typ is not None:
                spans.append((length, length + len(value), typ))
            parts.append(value)
            length += len(value)
            pos = m.end()
        parts.append(template[pos:])
        return Sample("".join(parts), spans, kind)

    def _slot(self, slot: str) -> tuple[str, str | None]:
        types = self.TEMPLATES.keys()
        if slot in types:
            return self.value(slot), slot
        extra = {
            "company": lambda: self.r.choice(COMPANIES),
            "order_number": self.order_number,
            "invoice_number": self.invoice_number,
            "product_code": self.product_code,
            "tracking_number": self.tracking_number,
            "amount": self.amount,
            "plain_date": self.plain_date,
            "small": lambda: str(self.r.randint(1, 99)),
            "digits8": lambda: self.digits(8),
            "digits9": lambda: self.digits(9),
            "digits12": lambda: self.digits(12),
            "ean13": lambda: "471" + self.digits(10),
            "bad_tw_id": lambda: self.tw_id(valid=False),
            "bad_arc": lambda: self.arc(valid=False),
            "bad_ubn": lambda: self.ubn(valid=False),
            "bad_card": lambda: self.credit_card(valid=False),
        }
        return extra[slot](), None

    def sentence(self, type_: str) -> Sample:
        return self._fill(self.r.choice(self.TEMPLATES[type_]), "positive")

    def lookalike(self) -> Sample:
        return self._fill(self.r.choice(self.LOOKALIKE_TEMPLATES), "lookalike")

    def invalid(self, type_: str | None = None) -> Sample:
        type_ = type_ or self.r.choice(list(self.INVALID_TEMPLATES))
        return self._fill(self.r.choice(self.INVALID_TEMPLATES[type_]), "invalid")

    def dataset(
        self, per_type: int = 300, lookalikes: int = 2000, invalid: int = 800
    ) -> list[Sample]:
        out = [self.sentence(t) for t in self.TEMPLATES for _ in range(per_type)]
        out += [self.lookalike() for _ in range(lookalikes)]
        out += [self.invalid() for _ in range(invalid)]
        self.r.shuffle(out)
        return out

    # --- tables and logs -----------------------------------------------------------

    TABLE_COLUMNS: tuple[tuple[str, str | None], ...] = (
        ("姓名", "name"),
        ("身分證字號", "tw_id"),
        ("手機", "mobile"),
        ("電子郵件", "email"),
        ("出生日期", "birthday"),
        ("地址", "address"),
        ("訂單編號", None),
        ("金額", None),
        ("備註", None),
    )

    def table(self, rows: int) -> tuple[list[str], list[list[str]]]:
        """A customer table: header and rows; the last three columns hold no PII."""
        header = [h for h, _ in self.TABLE_COLUMNS]
        body = []
        for _ in range(rows):
            row = []
            for _, typ in self.TABLE_COLUMNS:
                if typ == "birthday":
                    y, m, d = (
                        self.r.randint(1950, 2005),
                        self.r.randint(1, 12),
                        self.r.randint(1, 28),
                    )
                    row.append(f"{y}-{m:02d}-{d:02d}")
                elif typ == "address":
                    row.append(self.address())
                elif typ is not None:
                    row.append(self.value(typ))
                elif len(row) == 6:
                    row.append(self.order_number())
                elif len(row) == 7:
                    row.append(str(self.r.randint(100, 99999)))
                else:
                    row.append(self.r.choice(("", "VIP", "已結案", "待回覆", "請於三日內回電")))
            body.append(row)
        return header, body

    CHAT_FILLER: tuple[str, ...] = (
        "您好，請問有什麼可以為您服務的嗎？",
        "好的，我幫您查詢一下，請稍候。",
        "感謝您的耐心等候。",
        "這個問題已經轉給相關部門處理，預計三個工作天內回覆。",
        "請問訂單是哪一天下的呢？",
        "了解，退貨需要在收到商品後七天內申請。",
        "系統顯示包裹已於今天上午出貨。",
        "不好意思造成您的困擾。",
        "請問還有其他需要協助的地方嗎？",
        "謝謝，祝您有美好的一天！",
        "OK 沒問題",
        "收到，謝謝",
        "我上週買的耳機左耳沒有聲音",
        "可以幫我改寄送時間嗎？晚上比較方便",
        "發票可以改成公司抬頭嗎",
        "優惠券 SPRING2024 無法使用",
        "請問門市幾點開？",
        "價格是 NT$1,290 嗎？",
        "我要取消訂單",
    )
    AGENTS = ("客服小美", "客服阿傑", "客服 Amy", "系統")

    def chat_log(self, target_bytes: int, pii_rate: float = 0.08) -> str:
        """A customer-service chat export of about ``target_bytes`` UTF-8 bytes."""
        lines: list[str] = []
        size = 0
        types = list(self.TEMPLATES)
        t = 0
        while size < target_bytes:
            t += self.r.randint(5, 300)
            day, sec = divmod(t, 86400)
            hh, mm, ss = sec // 3600, sec // 60 % 60, sec % 60
            stamp = f"2024-{3 + day // 28 % 9:02d}-{1 + day % 28:02d} {hh:02d}:{mm:02d}:{ss:02d}"
            speaker = self.r.choice(self.AGENTS) if self.r.random() < 0.5 else "客戶"
            x = self.r.random()
            if x < pii_rate:
                msg = self.sentence(self.r.choice(types)).text
            elif x < pii_rate + 0.08:
                msg = self.lookalike().text
            else:
                msg = self.r.choice(self.CHAT_FILLER)
            line = f"[{stamp}] {speaker}：{msg}"
            lines.append(line)
            size += len(line.encode()) + 1
        return "\n".join(lines) + "\n"
