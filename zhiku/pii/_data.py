"""Word lists used by the detectors: surnames, given-name characters, places, labels.

The lists are deliberately plain data so they can be reviewed and extended without
touching the matching code.
"""

from __future__ import annotations

# The ~250 most frequent single-character surnames in Taiwan (內政部 姓名統計), both
# 溫/温, 黃/黄 and 凃/涂 spellings. Rare surnames that are mostly function words in
# running text (應, 時, 左, 申) are left out on purpose.
SURNAMES: frozenset[str] = frozenset(
    "陳林黃張李王吳劉蔡楊許鄭謝郭洪曾邱廖賴徐周葉蘇莊江呂何蕭羅高潘簡朱鍾彭游詹胡施沈"
    "余盧梁趙顏柯翁魏孫戴范方宋鄧杜傅侯曹薛丁卓阮馬董温溫唐藍石蔣古紀姚連馮歐程湯黄田康"
    "姜白汪鄒尤巫鐘黎涂凃龔嚴韓袁金童陸夏柳邵錢伍倪于譚駱熊任甘秦顧毛章史官萬俞雷粘饒闕"
    "凌崔尹孔辛武辜陶段龍韋葛池孟褚殷麥賀賈莫文管關包丘梅華利裴樊房全佘花魯安鮑郝穆塗"
    "邢蒲成谷常閻練盛鄔耿聶符祝繆陽岳齊籃舒畢喬龐翟牛鄞留季覃卜項隋車戚喻冉宮伏"
    "巴苗聞晏易胥虞封焦尚柴郁桂景盧婁屠卞霍衛祁鄺鍾歐"
)
COMPOUND_SURNAMES: frozenset[str] = frozenset(
    {"歐陽", "司馬", "司徒", "上官", "諸葛", "張簡", "范姜", "張廖", "夏侯", "東方", "皇甫",
     "公孫", "令狐", "慕容", "端木", "尉遲", "長孫", "軒轅"}
)  # fmt: skip

# Characters frequent in Taiwanese given names. Used only where the context marks a
# name without a delimiter (「客戶王小明來電」, 「林美華小姐」) to decide where it ends.
GIVEN_CHARS: frozenset[str] = frozenset(
    "明華美文志俊建家偉雅怡婷宏豪傑君芳玲欣宜佳瑋琪慧惠淑秀麗玉珍珊瑜馨萱庭廷翔宇昱哲凱誠"
    "信仁安嘉彥柏冠承育博軒睿恩晴涵妤瑄筑霖賢國榮成德輝忠正平雄勇強龍鳳英蘭梅春秋月雪霞琳"
    "蓉靜潔真如心思晨宣子祥瑞福貴順興旺山海光天中立政治民生昌盛漢勝義智達維聖恆耀銘鈞鴻群"
    "毅峰岳凡彬斌杰浩然宗裕良泰祐佑宥禎瑩穎瑤璇琦詩蓁薇芸萍菁茹慈純儀蕙綺嫻娟娜妮姿媛婉瑛"
    "敏亭婕伶琬湘沛宛品臻彤羽翊弘奕捷崇逸鈺澤洋濤宸恒昕易元孟伯仲倫健傳勳士大小振源益坤欽"
    "郁伊筠雯秉松竹桂菊蓮荷萱芝蘋瑾瑗璟珮琇琴瑟聰穗稜萬金銀錦鑫森林峻崴嵐巧麒麟彩"
    "虹霓雲霏露思意慕念聿謙諭諺謹詠評語韻音樂章竣靖婧婷妍姍妃娥嬌媚懿雅鎮鑫育貞卿碧翠寶"
    "珠璋琮玫瑰琦琨瑀璿璐瑢瑭玥玟珈珩祺禮禕祈福祿壽喜慶文武英豪俐伸佩侑俞倩偲傑凱勛勁"
    "劭厚宏富寬尉岑帆廣弼彰徽忻怡恬惟愷慈懋新旭昀昊昇映春晉晟景暐曜朋朗杉東柔柏梓棋楷榆"
    "樺橙欣正汝沅治泓泉洺津浚涵淳淵清渝湘源溢滋漢澄澔濰炫烽煒煥熙燁燦爵玄琳瑋甫男盈睿瞻"
    "碩磊祐秦穎立竹笙筱築紘紹綸緯縉翔翰聖舜芃芊芷若茵莉莎菡萱葳蔚蕾薰藝融衡裕詩誼豐辰"
    "逸達遠邦郁鈞銓鋒鎧長阡陞雋霆霖靈韋頌顥馥駿鵬麗"
)

# Words that, written right before a name without a colon, mark it as a person's name.
NAME_ROLES: tuple[str, ...] = (
    "客戶", "顧客", "會員", "用戶", "使用者", "病患", "患者", "病人", "個案", "案主", "學生",
    "學員", "家長", "員工", "同仁", "住戶", "房客", "租客", "乘客", "旅客", "消費者", "來電者",
    "民眾", "屋主", "車主", "保戶", "承租人", "出租人", "買家", "賣家", "收件者", "寄件者",
    "申訴人", "業務員", "專員", "經辦", "聯絡窗口", "窗口",
)  # fmt: skip

# Field labels after which a name is written (「姓名：王小明」); a colon is optional.
NAME_LABELS: tuple[str, ...] = (
    "姓名", "名字", "全名", "中文姓名", "英文姓名", "客戶姓名", "會員姓名", "病患姓名",
    "學生姓名", "家長姓名", "員工姓名", "聯絡人姓名", "聯絡人", "聯繫人", "連絡人",
    "緊急聯絡人", "收件人", "寄件人", "收貨人", "申請人", "持卡人", "戶名", "負責人",
    "代表人", "承辦人", "被保險人", "要保人", "受益人", "監護人", "法定代理人", "當事人",
    "立書人", "委託人", "受託人", "報案人", "陳情人", "檢舉人", "填表人", "經手人",
    "Full name", "Name",
)  # fmt: skip

# Honorifics written right after a name (「林美華小姐」).
HONORIFICS: tuple[str, ...] = ("先生", "小姐", "女士", "太太", "同學")

# Characters that start the word after a name rather than continue it
# (「客戶王明來電」: 來 ends the name). Also used to refuse implausible names.
NAME_STOP_CHARS: frozenset[str] = frozenset(
    "的了是在有和與跟及或對向於由把被讓給請說問表示反映詢來電打回今昨已曾將要想會能可也都"
    "因為但而就才又還再先後並於等稱之其此該這那各每某本貴敝您你我他她它們"
)

# Words right after a role noun that are not names even if they start with a surname.
NAME_FALSE_WORDS: frozenset[str] = frozenset(
    {"成功", "成員", "成本", "關係", "關懷", "管理", "應該", "應於", "應有", "時間", "時段",
     "常見", "全部", "全體", "安全", "安心", "包括", "方面", "方式", "方便", "方案", "高興",
     "利益", "華人", "金額", "金融", "文件", "留言", "單位", "申請", "解決", "石油", "服務",
     "資料", "權益", "需求", "意見", "姓名", "名單", "代表", "人數", "黃金", "白金", "江湖",
     "朱紅", "程式", "程序", "宋體", "馬上", "連續", "連結", "連線", "林口", "高雄", "台中",
     "臺中", "台北", "臺北", "台南", "臺南", "花蓮", "宜蘭", "新竹", "嘉義", "屏東", "苗栗",
     "彭湖", "金門", "關閉", "安裝", "康復", "田地", "章節", "包含", "武器", "夏季", "秦代",
     "萬元", "于是", "童年", "方法", "余額", "余下", "何時", "何處", "周年", "周末", "周一",
     "周二", "周三", "周四", "周五", "周六", "周日", "周邊", "許多", "許可", "向來", "曾經",
     "任何", "任務", "任職", "易於", "易用", "尚未", "尚有", "孫子", "温度", "溫度", "溫馨",
     "嚴重", "嚴格", "游泳", "范圍", "施工", "莊園", "江西", "邱比", "高級", "高鐵", "高中",
     "高速", "簡單", "簡訊", "簡介", "羅列", "潘朵", "朱古", "余生", "盧布", "龍頭", "雷射",
     "杜絕", "侯選", "麥當", "葛格", "池子", "孟加", "褚色", "殷切", "賀卡", "莫名", "管道",
     "關於", "關心", "花費", "花園", "魯莽", "安排", "穆斯", "成績", "常常", "常用", "閻王",
     "練習", "盛大", "符合", "申報", "祝福", "陽台", "陽光", "岳父", "齊全", "應用", "舒適",
     "畢業", "喬遷", "牛肉", "留下", "季節", "項目", "車輛", "車子", "時候", "時常", "宮廟",
     "苗條", "聞到", "易付", "封鎖", "焦點", "尚可", "景點", "衛生", "霍亂", "王牌", "李子",
     "黃色", "白色", "金色", "藍色", "紅色", "石頭", "方向", "文化", "文字", "華麗", "全新",
     "全家", "全聯", "巫師", "甘願", "凌晨", "史上", "官方", "官網", "萬一", "俞氣", "戴上",
     "戴口", "范本", "林立", "游客", "古早", "古蹟", "紀錄", "紀念", "連絡", "程度", "湯匙",
     "田野", "康健", "姜母", "汪汪", "鄒族", "尤其", "龔喜", "袁夢", "童裝", "陸續", "夏天",
     "柳橙", "錢包", "伍佰", "譚家", "熊貓", "任意", "顧問", "顧客", "毛巾", "章程", "雷達",
     "韋伯", "崔克", "尹大", "孔子", "辛苦", "武漢", "段落", "龍眼", "包裹", "包裝", "梅花",
     "華碩", "利用", "利率", "房屋", "房間", "房貸", "全額", "左邊", "花蓮縣", "安全帽",
     "成交", "成立", "成為", "常駐", "方可", "白天", "白晝", "金山", "安平", "高樹",
     "羅東", "田中", "古坑", "施工中", "車站", "時段中", "石門", "關西", "龍潭", "楊梅",
     "康樂", "成長", "全民", "陳情", "陳述", "陳列", "簡章", "簡報", "全國", "成年", "成人", "高齡",
     "安置", "高額", "施行", "施打", "董事", "連帶", "連署", "溫泉"}
)  # fmt: skip

# Taiwan's 22 municipalities / counties (both 臺 and 台), plus pre-2010 names still
# seen in old records.
CITIES: tuple[str, ...] = (
    "臺北市", "台北市", "新北市", "桃園市", "臺中市", "台中市", "臺南市", "台南市", "高雄市",
    "基隆市", "新竹市", "新竹縣", "苗栗縣", "彰化縣", "南投縣", "雲林縣", "嘉義市", "嘉義縣",
    "屏東縣", "宜蘭縣", "花蓮縣", "臺東縣", "台東縣", "澎湖縣", "金門縣", "連江縣",
    "臺北縣", "台北縣", "桃園縣", "臺中縣", "台中縣", "臺南縣", "台南縣", "高雄縣",
)  # fmt: skip

# Words before an address that say it belongs to an organisation, or to a person.
ADDRESS_BUSINESS_WORDS: tuple[str, ...] = (
    "公司", "門市", "總公司", "分公司", "營業", "總部", "辦公室", "服務中心", "服務處", "據點",
    "分行", "分店", "店址", "本店", "會址", "院址", "廠址", "工廠", "展示", "櫃檯", "櫃台",
    "門診", "校址", "地點", "會場", "場地", "機關", "局址", "所址", "館址",
)  # fmt: skip
ADDRESS_HOME_WORDS: tuple[str, ...] = (
    "住", "戶籍", "居住", "通訊", "寄送", "收件", "送貨", "配送", "家", "寄到", "寄至", "送到",
)  # fmt: skip
ADDRESS_WORDS: tuple[str, ...] = ("地址", "住址", "址", "寄", "送", "住", "Address", "Addr")

# Characters that cannot be part of a road / district name in an address (they end
# the sentence that precedes it: 「我住在中山路…」).
ADDRESS_STOP_CHARS: frozenset[str] = frozenset(
    "在住於址到往寄送是為的我你妳他她們請搬從位及與或並且家近"
)

# Local parts of role mailboxes (any token of the local part, split on . _ - + digits).
ROLE_MAILBOXES: frozenset[str] = frozenset(
    {"service", "services", "info", "information", "support", "contact", "contacts",
     "hr", "noreply", "no", "reply", "donotreply", "sales", "admin", "administrator",
     "webmaster", "postmaster", "hostmaster", "marketing", "pr", "press", "media", "news",
     "newsletter", "office", "help", "helpdesk", "customer", "customers", "cs", "csr",
     "billing", "account", "accounts", "accounting", "finance", "invoice", "invoices",
     "jobs", "job", "career", "careers", "recruit", "recruiting", "recruitment", "hiring",
     "enquiry", "enquiries", "inquiry", "inquiries", "feedback", "abuse", "security",
     "privacy", "dpo", "legal", "compliance", "public", "service1999", "mail", "team",
     "hello", "order", "orders", "shop", "store", "booking", "reservation", "reservations",
     "ir", "investor", "investors", "purchase", "purchasing", "procurement", "it",
     "tech", "techsupport", "bd", "biz", "business", "partner", "partners", "event",
     "events", "edu",
     "library", "registrar", "secretary", "secretariat", "reception", "frontdesk",
     "客服", "服務", "人資", "業務", "行銷", "會計", "財務", "總務", "採購", "公關", "資訊",
     "秘書", "招募", "徵才", "訂位", "訂房", "聯絡", "服務台"}
)  # fmt: skip

# Free / consumer mail providers: a mailbox there belongs to a person even when its
# local part is a role word (service.wang@gmail.com).
FREE_MAIL_DOMAINS: frozenset[str] = frozenset(
    {"gmail.com", "googlemail.com", "yahoo.com", "yahoo.com.tw", "ymail.com", "kimo.com",
     "hotmail.com", "hotmail.com.tw", "outlook.com", "live.com", "msn.com", "icloud.com",
     "me.com", "mac.com", "aol.com", "protonmail.com", "proton.me", "pchome.com.tw",
     "seed.net.tw", "hinet.net", "so-net.net.tw", "qq.com", "163.com", "126.com",
     "sina.com", "mail.com", "gmx.com", "gmx.net", "yandex.com", "livemail.tw",
     "tutanota.com", "yam.com", "url.com.tw", "ms.com.tw"}
)  # fmt: skip
