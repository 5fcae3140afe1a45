"""The closed vocabularies of report structuring and the surface forms that map onto them.

Everything a radiologist might want to audit lives here, as data: the output vocabularies (categories,
lateralities, locations), the surface forms of each location and category keyword, and the cue words for
negation, uncertainty and normal-structure statements. The engine modules only compile these.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

CATEGORIES: tuple[str, ...] = (
    "tumor",
    "infection",
    "cerebrovascular",
    "trauma",
    "malformation",
    "endocrine",
    "hippocampal_sclerosis",
    "normal",
)
LATERALITIES: tuple[str | None, ...] = ("left", "right", "bilateral", "midline", None)

# Canonical location -> surface forms (besides the canonical name itself). Lobes are matched by a pattern
# in locations.py instead, so that compounds (额顶部, 颞顶枕叶, 左额) split into their lobes.
LOCATION_FORMS: dict[str, tuple[str, ...]] = {
    "岛叶": ("岛盖", "脑岛"),
    "小脑": ("小脑半球", "小脑蚓部", "蚓部", "小脑扁桃体", "齿状核"),
    "脑干": ("脑桥", "桥脑", "延髓", "中脑", "大脑脚"),
    "基底节": ("基底节区", "基底核", "尾状核", "豆状核", "壳核", "苍白球", "内囊"),
    "丘脑": (),
    "鞍区": ("鞍内", "鞍上", "鞍旁", "蝶鞍", "垂体", "垂体柄", "视交叉", "下丘脑"),
    "海马": ("海马体", "海马头", "海马区"),
    "大脑镰": ("大脑镰旁", "镰旁"),
    "桥小脑角": ("脑桥小脑角", "桥小脑角区", "CPA"),
    "硬膜下": ("硬脑膜下",),
    "硬膜外": ("硬脑膜外",),
    "蛛网膜下腔": ("蛛网膜下隙",),
    "枕骨大孔": ("枕大孔",),
    "颈髓": ("颈段脊髓", "上颈髓"),
    "胼胝体": ("胼胝体压部", "胼胝体膝部", "胼胝体体部"),
    "脑白质": ("侧脑室旁", "脑室旁", "侧脑室周围", "放射冠", "半卵圆中心", "深部白质", "皮层下白质"),
    "颈内动脉": ("ICA",),
    "大脑中动脉": ("MCA",),
    "大脑前动脉": ("ACA",),
    "大脑后动脉": ("PCA",),
    "前交通动脉": ("前交通", "ACoA", "AcoA", "ACOM"),
    "后交通动脉": ("后交通", "PCoA", "PcoA", "PCOM"),
    "基底动脉": (),
    "椎动脉": (),
    "上矢状窦": (),
    "横窦": (),
    "乙状窦": (),
    "直窦": (),
    # Side anchors: matched so that their side counts (左侧大脑半球梗死), never output as a location.
    "": ("大脑半球",),
    # Surface forms of a lobe that the lobe pattern cannot see (gyri named by function).
    "额叶": ("中央前回", "扣带回前部"),
    "顶叶": ("中央后回", "楔前叶"),
    "颞叶": ("海马旁回", "颞叶内侧", "钩回"),
}
LOBES: dict[str, str] = {"额": "额叶", "颞": "颞叶", "顶": "顶叶", "枕": "枕叶", "岛": "岛叶"}
LOCATIONS: tuple[str, ...] = tuple(dict.fromkeys(loc for loc in [*LOBES.values(), *LOCATION_FORMS] if loc))
# Sites on the midline: the laterality of a report whose abnormal sites carry no side and include one.
MIDLINE_LOCATIONS: frozenset[str] = frozenset(
    {"鞍区", "大脑镰", "胼胝体", "脑干", "枕骨大孔", "颈髓", "前交通动脉", "基底动脉", "上矢状窦", "直窦"}
)
# Surface forms on the midline whose location is not (小脑蚓部 is the midline of the cerebellum).
MIDLINE_FORMS: frozenset[str] = frozenset({"小脑蚓部", "蚓部"})

# Category keyword -> category. ``None`` marks a decoy: a longer form that must NOT count (占位效应 is mass
# effect, not a mass; 鼻窦炎 is outside the brain). The longest form at a position wins.
CATEGORY_KEYWORDS: dict[str, str | None] = {
    # tumor
    **dict.fromkeys(
        (
            "胶质瘤", "胶质母细胞瘤", "星形细胞瘤", "少突胶质细胞瘤", "室管膜瘤", "髓母细胞瘤", "脑膜瘤",
            "转移瘤", "脑转移", "转移灶", "转移", "淋巴瘤", "听神经瘤", "神经鞘瘤", "颅咽管瘤", "血管母细胞瘤",
            "生殖细胞瘤", "脊索瘤", "肿瘤", "恶性肿瘤", "瘤内出血", "瘤卒中", "GBM", "glioma",
            "meningioma", "metastasis",
        ),
        "tumor",
    ),
    # infection
    **dict.fromkeys(
        ("脓肿", "脑脓肿", "脑炎", "病毒性脑炎", "脑膜炎", "感染", "结核", "结核瘤", "囊虫", "炎性病变",
         "炎症", "疱疹", "隐球菌", "弓形虫"),
        "infection",
    ),
    # cerebrovascular
    **dict.fromkeys(
        ("梗死", "梗塞", "脑梗", "缺血", "腔隙", "腔梗", "出血", "血肿", "动脉瘤", "烟雾病", "狭窄", "闭塞",
         "静脉窦血栓", "血栓形成", "卒中", "微出血", "infarct"),
        "cerebrovascular",
    ),
    # trauma
    **dict.fromkeys(
        ("挫裂伤", "挫伤", "外伤", "骨折", "硬膜下血肿", "硬膜外血肿", "硬膜下积液", "轴索损伤", "颅脑损伤",
         "创伤"),
        "trauma",
    ),
    # malformation
    **dict.fromkeys(
        ("畸形", "小脑扁桃体下疝", "扁桃体下疝", "Chiari", "灰质异位", "皮层发育不良", "发育不良", "发育不全",
         "海绵状血管瘤", "海绵状血管畸形", "海绵状血管瘤样", "脊髓空洞", "巨脑回", "多小脑回", "无脑回",
         "Dandy-Walker"),
        "malformation",
    ),
    # endocrine (the pituitary)
    **dict.fromkeys(
        ("垂体瘤", "垂体腺瘤", "垂体微腺瘤", "垂体大腺瘤", "微腺瘤", "大腺瘤", "Rathke囊肿", "Rathke裂囊肿",
         "拉克囊肿", "空泡蝶鞍", "空蝶鞍", "垂体增生", "垂体卒中"),
        "endocrine",
    ),
    # hippocampal sclerosis
    **dict.fromkeys(("海马硬化", "颞叶内侧硬化", "内侧颞叶硬化", "MTS"), "hippocampal_sclerosis"),
    # decoys
    **dict.fromkeys(
        ("占位效应", "鼻窦炎", "筛窦炎", "上颌窦炎", "蝶窦炎", "额窦炎", "乳突炎", "中耳炎", "副鼻窦炎",
         "椎管狭窄", "脑沟狭窄", "导水管狭窄", "血管周围间隙"),
        None,
    ),
}
# Mass words that say "tumor" only when nothing more specific is reported (an abscess is also a mass).
WEAK_TUMOR_KEYWORDS: tuple[str, ...] = ("占位", "占位性病变", "肿块", "团块", "肿物", "新生物")
# Bleeding words: trauma when the report also reports an injury; part of the lesion (no category of its
# own) when the clause places them inside it and the report names another category (内见少许出血).
BLEED_KEYWORDS: frozenset[str] = frozenset({"出血", "血肿", "微出血"})
WITHIN_LESION_CUES: tuple[str, ...] = ("内见", "其内", "内部", "灶内", "瘤内", "囊内")

# Generic abnormal-finding words: a clause holding one (or a category keyword) reports something abnormal.
FINDING_WORDS: tuple[str, ...] = (
    "异常", "信号影", "信号增高", "信号减低", "缩小", "长T1", "长T2", "短T1", "短T2", "高信号", "低信号", "等信号", "混杂信号",
    "强化", "占位", "肿块", "团块", "结节", "病灶", "病变", "灶", "囊变", "坏死", "水肿", "软化", "萎缩",
    "积液", "积血", "增厚", "疝", "突起", "膨出", "脱髓鞘", "变性", "胶质增生", "受限", "增粗", "增大", "囊肿", "瘤", "膨大", "畸形", "硬化",
)

# Cues. Uncertainty is masked before negation is looked for, so 不除外 never reads as a negation.
UNCERTAINTY_CUES: tuple[str, ...] = (
    "不除外", "不能除外", "不排除", "不能排除", "未除外", "未排除", "未能除外", "未能排除", "待排除", "待排", "除外",
    "可能性大", "可能", "考虑", "疑似", "疑为", "提示", "倾向", "拟诊", "?", "？",
)
NEGATION_CUES: tuple[str, ...] = (
    "未见明显", "未见确切", "未见明确", "未见", "未发现", "未显示", "未示", "未及", "未累及", "未伴", "未",
    "无明显", "无确切", "无", "没有", "不伴", "排除", "否认",
)
# Terms that open with a negation cue but name a finding (无脑回 is lissencephaly, 无功能腺瘤 a non-secreting
# adenoma): a cue never starts one.
CUE_LIKE_TERMS: tuple[str, ...] = ("无脑回", "无脑畸形", "无脑儿", "无嗅脑", "无功能", "未分化", "未成熟")
# Cues after the finding ("强化不明显"): they negate the finding word right before them (the clause's last),
# and what comes before that word stays asserted when it names a finding (团块影强化不明显).
POST_NEGATION_CUES: tuple[str, ...] = ("不明显", "不显著", "阴性", "消失")
# Structures whose 消失 is a finding (effacement: 脑沟消失, 灰白质分界消失, 流空信号消失), not a negation.
EFFACED_STRUCTURES: tuple[str, ...] = (
    "脑沟", "脑回", "沟回", "脑裂", "脑池", "灰白质分界", "灰白质界限", "皮髓质分界", "流空",
)
# Statements of normal anatomy: a clause with one and no finding word reports nothing abnormal.
NORMAL_CUES: tuple[str, ...] = (
    "居中", "对称", "清晰", "正常", "规则", "自然", "光整", "连续", "通畅", "无殊", "均匀", "未见异常", "良好",
    "存在", "如常", "清楚",
)
# A clause holding one recommends or refers; it reports no finding (建议增强除外肿瘤 is not a tumor).
RECOMMENDATION_CUES: tuple[str, ...] = ("建议", "请结合", "结合临床", "必要时")
# Words dropped from a negated clause to get its short phrase.
HEDGE_WORDS: tuple[str, ...] = ("明显", "确切", "明确", "显著")

SIDE_WORDS: dict[str, str] = {
    "左侧": "left", "右侧": "right", "双侧": "bilateral", "两侧": "bilateral", "左右": "bilateral",
    "左": "left", "右": "right", "双": "bilateral",
}

# Ordinary words of reports that are no identifier, though a name reader could take them for one (a
# surname opens many: 贝伐珠单抗, 韦尼克, 苗族, 白班): the de-identification's precision guard. No person name
# may be or cross one of the Chinese words (brainfm.reports.person_names), and no Latin name holds one of the
# Latin words (brainfm.reports.deid_text). Hyphenated eponyms also stand joined (吉兰巴雷); two-character
# words that could be a given name (韩文, 雷诺, 林道) are left out, as a name holding one would be lost.
# Generic drug names: anticonvulsants, chemotherapy, targeted antibodies and kinase inhibitors, steroids,
# dehydrating and contrast agents, anticoagulants, antiplatelets and thrombolytics, and common neurology drugs
# (Latin ones that an ending of DRUG_ENDINGS covers are not listed: levetiracetam, dexamethasone).
DRUG_NAMES: tuple[str, ...] = (
    # anticonvulsants
    "左乙拉西坦", "左旋乙拉西坦", "布瓦西坦", "丙戊酸钠", "丙戊酸镁", "丙戊酸", "卡马西平", "奥卡西平", "苯妥英钠",
    "苯妥英", "苯巴比妥", "拉莫三嗪", "托吡酯", "加巴喷丁", "普瑞巴林", "拉考沙胺", "吡仑帕奈", "氯硝西泮", "地西泮",
    "咪达唑仑", "劳拉西泮", "唑尼沙胺", "氨己烯酸", "乙琥胺", "valproate", "carbamazepine",
    "oxcarbazepine", "phenytoin", "phenobarbital", "lamotrigine", "topiramate", "gabapentin", "pregabalin",
    "lacosamide", "perampanel", "zonisamide", "vigabatrin",
    # chemotherapy
    "替莫唑胺", "卡莫司汀", "洛莫司汀", "司莫司汀", "尼莫司汀", "甲氨蝶呤", "阿糖胞苷", "顺铂", "卡铂", "奥沙利铂",
    "依托泊苷", "长春新碱", "环磷酰胺", "异环磷酰胺", "伊立替康", "丙卡巴肼", "紫杉醇", "多西他赛", "吉西他滨",
    "培美曲塞", "氟尿嘧啶", "卡培他滨", "多柔比星", "阿霉素", "博来霉素", "塞替派", "temozolomide", "carmustine",
    "lomustine", "methotrexate", "cytarabine", "etoposide", "vincristine", "cyclophosphamide", "ifosfamide",
    "irinotecan", "procarbazine", "pemetrexed", "fluorouracil", "thiotepa",
    # targeted antibodies and kinase inhibitors (…单抗, …替尼: see DRUG_ENDINGS)
    "贝伐珠单抗", "贝伐单抗", "利妥昔单抗", "曲妥珠单抗", "帕博利珠单抗", "纳武利尤单抗", "信迪利单抗",
    "卡瑞利珠单抗", "替雷利珠单抗", "特瑞普利单抗", "西妥昔单抗", "尼妥珠单抗", "伊匹木单抗", "阿替利珠单抗",
    "那他珠单抗", "奥瑞珠单抗", "阿仑单抗", "托珠单抗", "仑卡奈单抗", "多奈单抗", "吉非替尼", "厄洛替尼",
    "埃克替尼", "奥希替尼", "阿法替尼", "克唑替尼", "阿来替尼", "劳拉替尼", "伊马替尼", "拉帕替尼", "安罗替尼",
    "阿帕替尼", "仑伐替尼", "索拉非尼", "依维莫司", "西罗莫司", "达拉非尼", "曲美替尼", "维莫非尼",
    # steroids and dehydrating agents
    "地塞米松", "甲泼尼龙", "甲强龙", "甲基强的松龙", "泼尼松", "泼尼松龙", "强的松", "氢化可的松", "可的松",
    "倍他米松", "甘露醇", "甘油果糖", "高渗盐水", "呋塞米", "速尿", "托拉塞米", "乙酰唑胺", "白蛋白", "人血白蛋白",
    "七叶皂苷钠", "mannitol", "furosemide", "albumin",
    # contrast agents
    "钆喷酸葡胺", "钆特酸葡胺", "钆贝葡胺", "钆布醇", "钆双胺", "钆塞酸二钠", "钆对比剂", "碘海醇", "碘帕醇",
    "碘克沙醇", "碘普罗胺", "碘佛醇", "欧乃派克", "威视派克", "优维显", "马根维显", "普美显", "加乐显", "莫迪司",
    "gadolinium", "gadobutrol", "gadoterate", "gadopentetate", "gadobenate", "gadoxetate", "iohexol", "iopamidol",
    "iodixanol", "iopromide", "ioversol", "Omnipaque", "Visipaque", "Ultravist", "Magnevist", "Gadavist", "Dotarem",
    "MultiHance", "Primovist", "Eovist",
    # anticoagulants, antiplatelets, thrombolytics and statins
    "华法林", "肝素", "低分子肝素", "依诺肝素", "那屈肝素", "达肝素", "利伐沙班", "阿哌沙班", "艾多沙班",
    "达比加群", "达比加群酯", "阿加曲班", "比伐芦定", "阿司匹林", "氯吡格雷", "替格瑞洛", "西洛他唑", "双嘧达莫",
    "阿替普酶", "替奈普酶", "瑞替普酶", "尿激酶", "替罗非班", "依替巴肽", "巴曲酶", "阿托伐他汀", "瑞舒伐他汀",
    "warfarin", "dabigatran", "argatroban", "aspirin", "clopidogrel", "ticagrelor", "cilostazol", "urokinase",
    "tirofiban",
    # common neurology drugs
    "尼莫地平", "丁苯酞", "依达拉奉", "依达拉奉右莰醇", "奥扎格雷", "胞磷胆碱", "奥拉西坦", "吡拉西坦", "多奈哌齐",
    "美金刚", "卡巴拉汀", "加兰他敏", "左旋多巴", "多巴丝肼", "美多芭", "卡左双多巴", "普拉克索", "罗匹尼罗",
    "司来吉兰", "雷沙吉兰", "恩他卡朋", "金刚烷胺", "苯海索", "巴氯芬", "替扎尼定", "乙哌立松", "利鲁唑", "甲钴胺",
    "维生素", "硫胺素", "舒马普坦", "佐米曲普坦", "氟桂利嗪", "倍他司汀", "阿昔洛韦", "更昔洛韦", "头孢曲松",
    "万古霉素", "美罗培南", "两性霉素", "氟康唑", "异烟肼", "利福平", "吡嗪酰胺", "乙胺丁醇", "丙种球蛋白",
    "免疫球蛋白", "干扰素", "芬戈莫德", "特立氟胺", "硫唑嘌呤", "吗替麦考酚酯", "环孢素", "他克莫司", "丙泊酚",
    "右美托咪定", "水合氯醛", "芬太尼", "吗啡", "胰岛素", "edaravone", "citicoline",
    "donepezil", "memantine", "rivastigmine", "galantamine", "levodopa", "carbidopa", "pramipexole", "ropinirole",
    "selegiline", "rasagiline", "amantadine", "baclofen", "riluzole", "thiamine", "ceftriaxone", "isoniazid",
    "rifampicin", "interferon", "fingolimod", "teriflunomide", "azathioprine", "mycophenolate", "propofol",
    "fentanyl", "morphine", "insulin",
)  # fmt: skip
# Endings of generic drug names (…单抗 an antibody, …替尼 a kinase inhibitor, …西坦 a racetam, …洛尔 a beta
# blocker): a Chinese one with the few characters before it is a drug's name; a Latin word ending in one names
# a drug too.
DRUG_ENDINGS: tuple[str, ...] = (
    "单抗", "替尼", "非尼", "西坦", "唑胺", "洛尔", "沙班", "沙坦", "他汀", "地平", "西泮", "唑仑", "米松", "尼松",
    "他赛", "他滨", "比星", "卡因", "肝素", "普酶", "妥英", "三嗪", "喷丁", "吡酯", "蝶呤", "司琼", "拉唑", "沙星",
    "霉素", "培南", "康唑", "洛韦", "他韦", "利铂", "莫司", "司汀",
    "mab", "tinib", "fenib", "racetam", "zolamide", "olol", "xaban", "sartan", "statin", "dipine", "azepam",
    "azolam", "asone", "isone", "olone", "taxel", "citabine", "rubicin", "ocaine", "acaine", "parin", "teplase", "mycin",
    "floxacin", "cillin", "penem", "conazole", "clovir", "prazole", "olimus",
)  # fmt: skip
# Eponyms in their Chinese transliterations (韦尼克脑病, 吉兰-巴雷综合征, 桥本脑病, 莫亚莫亚病).
EPONYMS: tuple[str, ...] = (
    "韦尼克", "科萨科夫", "韦尼克-科萨科夫", "帕金森", "阿尔茨海默", "阿尔兹海默", "亨廷顿", "克雅", "克-雅",
    "吉兰-巴雷", "格林-巴利", "桥本", "川崎", "莫亚莫亚", "巴宾斯基", "霍夫曼", "库欣", "艾迪生", "格雷夫斯",
    "梅尼埃", "拉斯姆森", "伦诺克斯-加斯托", "德维克", "马尔基亚法瓦-比尼亚米", "宾斯旺格", "皮克", "路易体",
    "斯特奇-韦伯", "希佩尔-林道", "托洛萨-亨特", "福斯特-肯尼迪", "帕里诺", "瓦伦贝格", "布朗-塞卡", "格斯特曼",
    "布罗卡", "威利斯", "罗森塔尔", "特罗拉德", "门罗", "卢施卡", "马让迪", "梅克尔", "菲舍尔", "亨特-赫斯",
    "格拉斯哥", "法泽卡斯", "斯佩茨勒-马丁", "基亚里", "阿诺德-基亚里", "丹迪-沃克", "贝赫切特", "舍格伦",
    "普拉德-威利", "克兰费尔特", "科凯恩", "尼曼-匹克", "泰-萨克斯", "弗里德赖希", "马查多-约瑟夫",
    "沙尔科-马里-图思", "米勒-费希尔", "比克斯塔夫", "拉姆齐-亨特", "兰道-克莱夫纳", "德拉韦", "大田原",
)  # fmt: skip
# China's 56 ethnic groups (吴阿妹（苗族）), and their short forms.
ETHNIC_GROUPS: tuple[str, ...] = (
    "汉族", "壮族", "回族", "满族", "维吾尔族", "苗族", "彝族", "土家族", "藏族", "蒙古族", "侗族", "布依族", "瑶族",
    "白族", "朝鲜族", "哈尼族", "黎族", "哈萨克族", "傣族", "畲族", "傈僳族", "东乡族", "仡佬族", "拉祜族", "佤族",
    "水族", "纳西族", "羌族", "土族", "仫佬族", "锡伯族", "柯尔克孜族", "景颇族", "达斡尔族", "撒拉族", "布朗族",
    "毛南族", "塔吉克族", "普米族", "阿昌族", "怒族", "鄂温克族", "京族", "基诺族", "德昂族", "保安族", "俄罗斯族",
    "裕固族", "乌孜别克族", "门巴族", "鄂伦春族", "独龙族", "赫哲族", "高山族", "珞巴族", "塔塔尔族", "维族", "蒙族",
    "少数民族",
)  # fmt: skip
# Shifts and rota lines (请白班在9点前出报告, 神经外科二线).
SHIFT_WORDS: tuple[str, ...] = (
    "白班", "夜班", "早班", "中班", "晚班", "日班", "大夜班", "小夜班", "大夜", "小夜", "备班", "听班", "休班", "轮班",
    "一线", "二线", "三线", "住院总",
)  # fmt: skip
# Languages and dialects (中文说明, Interpreter: Cantonese).
LANGUAGE_NAMES: tuple[str, ...] = (
    "中文", "英文", "汉语", "英语", "普通话", "粤语", "闽南语", "闽南话", "客家话", "潮汕话", "上海话", "四川话", "日语",
    "日文", "朝鲜语", "藏语", "藏文", "维吾尔语", "维语", "蒙古语", "哈萨克语", "彝语", "壮语", "葡萄牙语", "葡语",
    "法语", "德语", "俄语", "西班牙语", "阿拉伯语", "越南语", "泰语", "马来语", "手语", "Cantonese", "Mandarin",
    "Putonghua", "Hokkien", "Teochew", "Hakka", "Shanghainese", "Chinese", "Japanese", "Korean", "Tibetan", "Uyghur",
    "Mongolian", "Portuguese", "Spanish", "Russian", "Arabic", "Vietnamese", "Malay", "Indonesian", "Hindi",
    "Tamil", "Tagalog", "Nepali", "Urdu", "Bengali",
)  # fmt: skip
# Words of forms and documents (调取证据通知书, 知情同意书, 科室盖章).
DOCUMENT_WORDS: tuple[str, ...] = (
    "通知书", "通知单", "告知书", "同意书", "知情同意书", "申请书", "申请单", "委托书", "意见书", "鉴定书", "证明书",
    "回执", "存根", "盖章", "科室盖章", "签章", "公章", "印章", "签字栏",
)  # fmt: skip
NOT_IDENTIFIER_WORDS: tuple[str, ...] = (
    *DRUG_NAMES, *EPONYMS, *ETHNIC_GROUPS, *SHIFT_WORDS, *LANGUAGE_NAMES, *DOCUMENT_WORDS,
)  # fmt: skip


# Traditional characters and their simplified forms, in pairs (傳传, 醫医…), to read Hong Kong, Macau and
# Taiwan reports with the simplified vocabularies and jieba's dictionary: the one-to-one entries of OpenCC's
# TSCharacters table (Apache-2.0, with its Hong Kong variants) whose traditional form is no simplified
# character too (乾, 於 and 著 are left) and whose simplified form jieba's tagger knows. One character for
# one, so folded text keeps every position.
_TRADITIONAL_PAIRS = (
    "萬万與与醜丑專专業业叢丛東东絲丝丟丢兩两嚴严喪丧個个箇个豐丰臨临為为爲为麗丽舉举麼么義义烏乌樂乐喬乔習习"
    "鄉乡書书買买亂乱爭争虧亏雲云亙亘亞亚產产産产畝亩親亲褻亵億亿僅仅僕仆從从侖仑崙仑倉仓儀仪們们價价眾众衆众"
    "優优會会傴伛傘伞偉伟傳传傷伤倀伥倫伦傖伧偽伪僞伪佇伫體体餘余彿佛傭佣僉佥俠侠侶侣僥侥偵侦側侧僑侨儈侩儕侪"
    "儂侬儁俊俁俣儔俦儼俨倆俩儷俪儉俭脩修債债傾倾傯偬僂偻僨偾償偿儻傥儐傧儲储儺傩殭僵兒儿兌兑兗兖黨党蘭兰關关"
    "興兴茲兹養养獸兽內内岡冈冊册寫写軍军農农塚冢鼕冬馮冯沖冲衝冲決决況况凍冻凈净淨净悽凄淒凄準准涼凉淩凌減减"
    "湊凑凜凛幾几鳳凤鳧凫鳬凫憑凭凱凯兇凶齣出擊击鑿凿芻刍劃划劉刘則则剛刚創创刪删別别彆别剄刭颳刮製制剎刹劊刽"
    "劌刿剴剀劑剂剮剐劍剑剝剥劇剧勸劝辦办務务勱劢動动勵励勁劲勞劳勢势勛勋勳勋勻匀匭匦匱匮區区醫医韆千昇升陞升"
    "華华協协單单賣卖蔔卜佔占盧卢滷卤鹵卤臥卧衛卫衞卫卽即卻却捲卷巹卺廠厂廳厅厤历曆历歷历厲厉壓压厭厌厙厍厠厕"
    "廁厕釐厘廂厢厴厣廈厦廚厨廄厩廝厮縣县叄叁參参蔘参雙双發发髮发變变敍叙敘叙疊叠隻只枱台檯台臺台颱台葉叶號号"
    "嘆叹歎叹嘰叽籲吁喫吃閤合弔吊衕同後后嚮向曏向嚇吓呂吕嗎吗噸吨聽听啓启啟启吳吴獃呆吶呐囈呓嘔呕嚦呖唄呗員员"
    "咼呙嗆呛嗚呜週周詠咏嚨咙嚀咛噝咝吒咤諮咨鹹咸嚥咽鬨哄響响啞哑噠哒嗶哔噦哕嘩哗譁哗噲哙嚌哜噥哝喲哟脣唇嘜唛"
    "嘮唠嗩唢喚唤嘖啧嗇啬囀啭嚙啮齧啮嘯啸餵喂噴喷嘍喽嚳喾囁嗫噯嗳噓嘘嚶嘤囑嘱嚕噜譟噪囂嚣迴回團团糰团園园睏困"
    "囪囱圍围圇囵國国圖图圓圆聖圣壙圹場场壞坏塊块堅坚墰坛壇坛壜坛罈坛罎坛壢坜垻坝壩坝塢坞墳坟墜坠壟垄壚垆壘垒"
    "墾垦堊垩墊垫埡垭堖垴塒埘塤埙壎埙堝埚塹堑墮堕墻墙牆墙壯壮聲声殻壳殼壳壺壶處处備备復复複复夠够頭头誇夸夾夹"
    "奪夺奩奁奐奂奮奋奬奖獎奖奧奥姦奸妝妆粧妆婦妇媽妈嫵妩嫗妪媯妫嬀妫姍姗薑姜奼姹婁娄婭娅嬈娆嬌娇孌娈孃娘娛娱"
    "媧娲嫺娴嫻娴嬰婴嬋婵嬸婶媼媪嬡嫒嬪嫔嬙嫱嬤嬷孫孙學学孿孪寧宁甯宁寶宝實实寵宠審审憲宪宮宫傢家寬宽賓宾寢寝"
    "對对尋寻導导壽寿將将爾尔塵尘嘗尝嚐尝堯尧尷尴屍尸儘尽盡尽侷局層层屜屉屆届屬属屢屡屨屦嶼屿嵗岁歲岁𡻕岁豈岂"
    "嶇岖崗岗峴岘嵐岚島岛巖岩嶺岭嶽岳崬岽巋岿嶧峄峽峡嶠峤崢峥巒峦峯峰嶗崂崍崃嶄崭嶸嵘嶁嵝巔巅鉅巨鞏巩巰巯幣币"
    "佈布帥帅師师幃帏帳帐簾帘幟帜帶带幀帧蓆席幫帮幘帻幗帼冪幂幹干榦干並并併并倖幸廣广莊庄慶庆牀床廬庐廡庑庫库"
    "應应廟庙龐庞廢废菴庵廩廪開开異异棄弃弒弑張张彌弥瀰弥絃弦弳弪彎弯彈弹強强歸归噹当當当彔录錄录録录彥彦綵彩"
    "徹彻徑径徠徕禦御憶忆懺忏誌志憂忧唸念愾忾懷怀態态慫怂慪怄悵怅愴怆憐怜總总懟怼懌怿戀恋恆恒卹恤懇恳噁恶惡恶"
    "慟恸懨恹愷恺惻恻惱恼惲恽悅悦愨悫慤悫懸悬慳悭憫悯驚惊懼惧慘惨懲惩憊惫愜惬慚惭憚惮慣惯癒愈慍愠憤愤憒愦願愿"
    "懾慑懣懑懶懒懍懔戔戋戲戏戧戗戰战慼戚戩戬戶户纔才紮扎撲扑託托釦扣執执擴扩捫扪掃扫揚扬擾扰摺折撫抚拋抛摶抟"
    "摳抠掄抡搶抢護护報报擔担枴拐柺拐擬拟攏拢揀拣擁拥攔拦擰拧撥拨擇择掛挂摯挚攣挛撾挝撻挞挾挟撓挠擋挡撟挢掙挣"
    "擠挤揮挥捱挨挱挲輓挽綑捆撈捞損损撿捡換换搗捣擣捣據据擄掳摑掴擲掷撣掸摻掺攬揽攙搀擱搁摟搂攪搅蒐搜攜携攝摄"
    "攄摅擺摆襬摆搖摇擯摈攤摊攖撄撐撑攆撵擷撷擼撸攛撺擻擞攢攒敵敌敎教斂敛數数齋斋斕斓鬥斗斬斩斷断鏇旋旂旗無无"
    "旣既舊旧時时曠旷崑昆曇昙晝昼顯显晉晋曬晒曉晓曄晔暈晕暉晖暫暂闇暗曖暧麯曲麴曲朮术術术硃朱樸朴機机殺杀雜杂"
    "權权桿杆槓杠條条來来楊杨榪杩盃杯傑杰鬆松闆板極极構构樅枞樞枢棗枣櫪枥梘枧棖枨槍枪楓枫梟枭櫃柜檸柠査查檉柽"
    "梔栀柵栅標标棧栈櫛栉櫳栊棟栋櫨栌櫟栎欄栏樹树棲栖慄栗樣样覈核欒栾椏桠橈桡楨桢檔档榿桤橋桥樺桦檜桧槳桨樁桩"
    "樑梁夢梦檢检欞棂棊棋稜棱槨椁櫝椟槧椠欏椤橢椭樓楼欖榄櫬榇櫚榈櫸榉欅榉檻槛檳槟櫧槠橫横檣樯櫻樱櫫橥櫥橱櫓橹"
    "櫞橼檁檩歡欢歟欤歐欧慾欲殲歼歿殁殤殇殘残殞殒殮殓殫殚殯殡毆殴毀毁燬毁譭毁轂毂畢毕斃毙氈毡毿毵氌氇氣气氫氢"
    "氬氩氳氲匯汇彙汇滙汇漢汉汙污湯汤洶汹瀋沈溝沟沒没灃沣漚沤瀝沥淪沦滄沧溈沩潙沩滬沪霑沾洩泄氾泛汎泛濘泞註注"
    "淚泪瀧泷瀘泸濼泺瀉泻潑泼澤泽涇泾潔洁灑洒窪洼浹浃淺浅漿浆澆浇湞浈濁浊測测澮浍濟济瀏浏渾浑滸浒濃浓潯浔塗涂"
    "湧涌濤涛澇涝淶涞漣涟潿涠渦涡渙涣滌涤潤润澗涧漲涨澀涩澱淀淵渊淥渌漬渍瀆渎漸渐澠渑漁渔滲渗溫温遊游灣湾溼湿"
    "濕湿潰溃濺溅漵溆泝溯遡溯潷滗滾滚滯滞灧滟灩滟灄滠滿满瀅滢濾滤濫滥灤滦濱滨灘滩灕漓瀠潆瀟潇瀲潋濰潍潛潜瀦潴"
    "瀾澜瀨濑瀕濒灝灏滅灭燈灯靈灵竈灶災灾燦灿煬炀爐炉燉炖煒炜熗炝點点煉炼鍊炼熾炽爍烁爛烂烴烃燭烛煙烟菸烟煩烦"
    "燒烧燁烨燴烩燙烫燼烬熱热煥焕燜焖燾焘燻熏愛爱爺爷牘牍氂牦犛牦牽牵犧牺犢犊狀状獷犷獁犸猶犹狽狈獰狞獨独狹狭"
    "獅狮獪狯猙狰獄狱猻狲獫猃獵猎獼猕玀猡豬猪貓猫蝟猬獻献獺獭璣玑瑪玛翫玩瑋玮環环現现璽玺琺珐瓏珑琿珲璉琏瑣琐"
    "瓊琼瑤瑶璦瑷璿璇瓔璎瓚瓒甕瓮甌瓯電电畫画畵画暢畅疇畴癤疖療疗瘧疟癘疠瘍疡癧疬瘡疮瘋疯皰疱痾疴癥症癰痈痙痉"
    "癢痒瘂痖癆痨瘓痪癇痫癡痴癉瘅瘞瘗瘺瘘瘻瘘癟瘪癱瘫癮瘾癭瘿癩癞癬癣癲癫皁皂皚皑皺皱皸皲盞盏鹽盐監监蓋盖盜盗"
    "盤盘瞘眍眞真眥眦矓眬睜睁睞睐瞼睑瞞瞒矚瞩榘矩矯矫磯矶礬矾礦矿碭砀碼码磚砖硨砗硯砚碸砜礪砺礱砻礫砾礎础碩硕"
    "硤硖磽硗確确礆硷礙碍磧碛磣碜鹼碱禮礼禰祢禎祯禱祷禍祸稟禀祿禄禪禅離离俬私禿秃稈秆鞦秋種种祕秘積积稱称穢秽"
    "稅税穌稣穩稳穡穑窮穷竊窃竅窍窯窑竄窜窩窝窺窥竇窦窶窭竪竖豎竖競竞篤笃筍笋筆笔筧笕箋笺籠笼籩笾築筑篳筚篩筛"
    "箏筝籌筹簽签籤签簡简籙箓簀箦篋箧籜箨籮箩簞箪簫箫簣篑簍篓籃篮籬篱籪簖籟籁糴籴類类秈籼糶粜糲粝粵粤糞粪糧粮"
    "糉粽糭粽糝糁餱糇餬糊餈糍醣糖係系繫系緊紧纍累縶絷糾纠紆纡紅红紂纣縴纤纖纤紇纥約约級级紈纨纊纩紀纪紉纫緯纬"
    "紜纭純纯紕纰紗纱綱纲納纳縱纵綸纶紛纷紙纸紋纹紡纺紐纽紓纾綫线線线紺绀紲绁紱绂練练組组紳绅細细織织終终縐绉"
    "絆绊紼绋絀绌紹绍繹绎經经紿绐綁绑絨绒結结絝绔繞绕絎绗繪绘給给絢绚絳绛絡络絕绝絶绝絞绞統统綆绠綃绡絹绢綉绣"
    "繡绣綏绥絛绦縧绦繼继綈绨績绩緒绪綾绫續续綺绮緋绯綽绰緔绱鞝绱緄绲繩绳維维綿绵綬绶綳绷繃绷綢绸綹绺綣绻綜综"
    "綻绽綰绾綠绿緑绿綴缀緇缁緙缂緗缃緘缄緬缅纜缆緹缇緲缈緝缉繢缋緦缌緞缎緶缏緱缑縋缒緩缓締缔縷缕編编緡缗緣缘"
    "縉缙縛缚縟缛縝缜縫缝縞缟纏缠縭缡縊缢縑缣繽缤縹缥縲缧纓缨縮缩繆缪繅缫纈缬繚缭繕缮繒缯繮缰韁缰繾缱繰缲繯缳"
    "繳缴纘缵罌罂網网羅罗罰罚罷罢羆罴羈羁羥羟羨羡羣群翹翘耮耢耬耧聳耸恥耻聶聂聾聋職职聹聍聯联聵聩聰聪肅肃腸肠"
    "膚肤骯肮餚肴腎肾腫肿脹胀脅胁冑胄膽胆勝胜衚胡鬍胡朧胧腖胨臚胪脛胫膠胶脈脉膾脍臟脏髒脏臍脐腦脑膿脓臠脔腳脚"
    "脫脱臉脸臘腊醃腌齶腭膩腻靦腼騰腾臏膑羶膻緻致輿舆捨舍艤舣艦舰艙舱艫舻艱艰艷艳豔艳藝艺節节羋芈薌芗蕪芜蘆芦"
    "蕓芸蓯苁葦苇藶苈莧苋萇苌蒼苍囌苏甦苏蘇苏蘋苹範范莖茎蘢茏蔦茑塋茔煢茕繭茧荊荆薦荐莢荚蕘荛蓽荜蕎荞薈荟薺荠"
    "盪荡蕩荡榮荣葷荤滎荥犖荦熒荧蕁荨藎荩蓀荪廕荫蔭荫蕒荬葯药藥药蒞莅萊莱蓮莲蒔莳萵莴薟莶獲获穫获蕕莸瑩莹鶯莺"
    "蒓莼蓴莼蘿萝螢萤營营縈萦蕭萧薩萨蔥葱蕆蒇蕢蒉蔣蒋蔞蒌懞蒙濛蒙矇蒙簑蓑藍蓝薊蓟蘺蓠蕷蓣鎣蓥驀蓦衊蔑薔蔷蘞蔹"
    "藺蔺藹蔼蘄蕲蘊蕴藪薮蘚藓櫱蘖虜虏慮虑虛虚蟲虫虯虬蟣虮蝨虱雖虽蝦虾蠆虿蝕蚀蟻蚁螞蚂蠶蚕蠔蚝蜆蚬蠱蛊蠣蛎蟶蛏"
    "蠻蛮蟄蛰蛺蛱蟯蛲螄蛳蠐蛴蛻蜕蝸蜗蠟蜡蠅蝇蟈蝈蟬蝉蠍蝎螻蝼蠑蝾蟎螨釁衅銜衔補补錶表襯衬袞衮襖袄嫋袅裊袅襪袜"
    "襲袭裝装襠裆褳裢襝裣褲裤襇裥襉裥褸褛襤褴見见觀观規规覓觅視视覘觇覽览覺觉覬觊覡觋覿觌覦觎覯觏覲觐覷觑觴觞"
    "觸触觶觯譽誉謄誊計计訂订訃讣認认譏讥訐讦訌讧討讨讓让訕讪訖讫訓训議议訊讯記记講讲諱讳謳讴詎讵訝讶訥讷許许"
    "訛讹論论訟讼諷讽設设訪访訣诀証证證证詁诂訶诃評评詛诅識识詐诈訴诉診诊詆诋謅诌詞词詘诎詔诏譯译詒诒誆诓誄诔"
    "試试詿诖詩诗詰诘詼诙誠诚誅诛詵诜話话誕诞詬诟詮诠詭诡詢询詣诣諍诤該该詳详詫诧諢诨詡诩誡诫誣诬語语誚诮誤误"
    "誥诰誘诱誨诲誑诳說说説说誦诵誒诶請请諸诸諏诹諾诺讀读諑诼誹诽課课諉诿諛谀誰谁諗谂調调諂谄諒谅諄谆誶谇談谈"
    "誼谊謀谋諶谌諜谍謊谎諫谏諧谐謔谑謁谒謂谓諤谔諭谕諼谖讒谗諳谙諺谚諦谛謎谜諞谝謨谟讜谠謖谡謝谢謠谣謡谣謗谤"
    "諡谥謚谥謙谦謐谧謹谨謾谩謫谪謭谫譾谫謬谬譚谭譖谮譙谯讕谰譜谱譎谲讞谳譴谴譫谵讖谶穀谷貝贝貞贞負负貢贡財财"
    "責责賢贤敗败賬账貨货質质販贩貪贪貧贫貶贬購购貯贮貫贯貳贰賤贱賁贲貰贳貼贴貴贵貺贶貸贷貿贸費费賀贺貽贻賊贼"
    "贄贽賈贾賄贿貲赀賃赁賂赂贓赃贜赃資资賅赅贐赆賑赈賚赉賒赊賦赋賭赌賫赍齎赍贖赎賞赏賜赐賡赓賠赔賧赕賴赖贅赘"
    "賻赙賺赚賽赛賾赜贋赝贗赝讚赞贊赞贈赠贍赡贏赢贛赣趙赵趕赶趨趋趲趱躉趸躍跃蹌跄蹠跖躒跞踐践蹺跷蹕跸躚跹躋跻"
    "踴踊躊踌蹤踪躓踬躑踯躡蹑蹣蹒躕蹰躥蹿躪躏躦躜軀躯車车軋轧軌轨軒轩軔轫轉转軛轭輪轮軟软轟轰軲轱軻轲轤轳軸轴"
    "軹轵軼轶軫轸轢轹軺轺輕轻軾轼載载輊轾轎轿輅辂較较輒辄輔辅輛辆輦辇輩辈輝辉輥辊輞辋輟辍輜辎輳辏輻辐輯辑輸输"
    "轡辔轅辕轄辖輾辗轆辘轍辙轔辚辭辞闢辟辯辩辮辫邊边遼辽達达遷迁過过邁迈運运還还這这進进遠远違违連连遲迟邇迩"
    "跡迹蹟迹適适選选遜逊遞递邐逦邏逻踰逾遺遗遙遥鄧邓鄺邝鄔邬郵邮鄒邹鄴邺鄰邻鬱郁郟郏鄶郐鄭郑鄆郓酈郦鄖郧鄲郸"
    "醞酝醬酱痠酸釅酽釃酾釀酿埰采寀采採采釋释裏里裡里鑑鉴鑒鉴鑾銮鏨錾釓钆釔钇針针鍼针釘钉釗钊釙钋釷钍釺钎釧钏"
    "釤钐釩钒釣钓鍆钔釹钕釵钗鈣钙鈈钚鈦钛鈍钝鈔钞鈡钟鍾钟鐘钟鈉钠鋇钡鋼钢鈑钣鈐钤鈅钥鑰钥欽钦鈞钧鎢钨鈎钩鉤钩"
    "鈧钪鈁钫鍅钫鈥钬鈄钭鈕钮鈀钯鈺钰錢钱鉦钲鉗钳鈷钴缽钵鉢钵鉕钷鈸钹鉞钺鉆钻鑽钻鉬钼鉭钽鉀钾鈿钿鈾铀鐵铁鉑铂"
    "鈴铃鑠铄鉛铅鉚铆鈰铈鉉铉鉈铊鉍铋鈮铌鈹铍鐸铎銬铐銠铑鉺铒銪铕鋮铖鋏铗鐃铙鐺铛銅铜鋁铝銱铞銦铟鎧铠鍘铡銖铢"
    "銑铣鋌铤銩铥鏵铧銓铨鎩铩鉿铪銚铫鉻铬銘铭錚铮銫铯鉸铰銥铱剷铲鏟铲銃铳銨铵銀银銣铷鑄铸鐒铹鋪铺錸铼鋱铽鏈链"
    "鏗铿銷销鎖锁鋰锂鋥锃鋤锄鍋锅鋯锆鋨锇銹锈鏽锈銼锉鋒锋鋅锌鋶锍鐦锎鐧锏銳锐鋭锐銻锑鋃锒鋟锓鋦锔錒锕錆锖鍺锗"
    "鍩锘錯错錨锚錛锛鍀锝錁锞錕锟錫锡錮锢鑼锣錘锤鎚锤錐锥錦锦鍁锨錈锩鍃锪鉳锫錇锫錟锬錠锭鍵键鋸锯錳锰錙锱鍥锲"
    "鍇锴鏘锵鍶锶鍔锷鍤锸鍬锹鍛锻鍰锾鎄锿鍍镀鎂镁鏤镂鐨镄鎇镅鏌镆鎭镇鎮镇鎘镉鑷镊鎸镌鐫镌鎳镍錼镎鎿镎鎦镏鎬镐"
    "鎊镑鎰镒鎵镓鑌镔鎔镕鏢镖鏜镗鏝镘鏰镚鏞镛鏡镜鏑镝鏃镞鐔镡鐝镢钁镢鐐镣鏷镤鑥镥鐓镦鑭镧鐠镨鑹镩鐙镫鑊镬鐳镭"
    "鐲镯鎌镰鐮镰鐿镱鑔镲鑣镳鑲镶長长門门閂闩閃闪閆闫閉闭問问闖闯閏闰闈闱閑闲閒闲閎闳間间閔闵閌闶悶闷閘闸鬧闹"
    "閨闺聞闻闥闼閩闽閭闾閥阀閣阁閡阂閫阃鬮阄閱阅閲阅閬阆闍阇閾阈閹阉閶阊鬩阋閿阌閽阍閻阎閼阏闡阐闌阑闃阒闊阔"
    "闋阕闔阖闐阗闕阙闞阚隊队陽阳陰阴陣阵階阶際际陸陆隴陇陳陈陘陉陝陕隉陧隕陨險险隨随隱隐隸隶雋隽難难僱雇雛雏"
    "彫雕琱雕鵰雕讎雠靂雳霧雾霽霁黴霉靄霭靚靓靜静麪面麫面麵面靨靥韃鞑鞽鞒韉鞯韝鞲韋韦韌韧韓韩韙韪韞韫韜韬韻韵"
    "頁页頂顶頃顷頇顸項项順顺須须鬚须頊顼頑顽顧顾頓顿頎颀頒颁頌颂頏颃預预顱颅領领頗颇頸颈頡颉頰颊頜颌潁颍頦颏"
    "頤颐頻频頹颓頽颓頷颔穎颖顆颗題题顎颚顓颛顏颜顔颜額额顳颞顢颟顛颠顙颡顥颢顫颤顬颥顰颦顴颧風风颮飑颯飒颶飓"
    "颼飕飄飘飆飙飈飚飛飞飱飧饗飨饜餍飣饤飢饥饑饥飥饦餳饧飩饨餼饩飪饪飫饫飭饬飯饭飲饮餞饯飾饰飽饱飼饲飿饳飴饴"
    "餌饵饒饶餉饷餃饺餅饼餑饽餖饾餓饿餒馁餛馄餡馅舘馆館馆餷馇饋馈餶馉餿馊饞馋饃馍餺馎餾馏饈馐饉馑饅馒饊馓饌馔"
    "饢馕馬马馭驭馱驮馴驯馳驰驅驱駁驳驢驴駔驵駛驶駟驷駙驸駒驹騶驺駐驻駝驼駑驽駕驾驛驿駘骀驍骁罵骂駡骂驕骄驊骅"
    "駱骆駭骇駢骈驪骊騁骋驗验駿骏騏骐騎骑騍骒騅骓驂骖騙骗騭骘騷骚騖骛驁骜騮骝騫骞騸骟驃骠騾骡驄骢驏骣驟骤驥骥"
    "驤骧髏髅髖髋髕髌鬢鬓魘魇魎魉魚鱼魷鱿魯鲁魴鲂鮁鲅鮃鲆鮎鲇鱸鲈鮒鲋鮑鲍鱟鲎鮐鲐鮭鲑鮚鲒鮪鲔鮞鲕鱭鲚鮫鲛鮮鲜"
    "鮝鲞鯗鲞鱘鲟鯁鲠鱺鲡鰱鲢鰹鲣鯉鲤鰣鲥鰷鲦鯀鲧鯊鲨鯇鲩鯽鲫鯖鲭鯪鲮鯫鲰鯡鲱鯤鲲鯧鲳鯝鲴鯢鲵鯰鲶鯛鲷鯨鲸鯴鲺"
    "鯔鲻鱝鲼鰈鲽鰓鳃鰐鳄鱷鳄鰍鳅鰒鳆鰉鳇鯿鳊鰲鳌鰭鳍鰨鳎鰥鳏鰩鳐鰳鳓鰾鳔鱈鳕鱉鳖鰻鳗鰵鳘鱅鳙鱖鳜鱔鳝鱗鳞鱒鳟"
    "鱧鳢鳥鸟鳩鸠雞鸡鷄鸡鳶鸢鳴鸣鷗鸥鴉鸦鴇鸨鴆鸩鴣鸪鶇鸫鸕鸬鴨鸭鴦鸯鴟鸱鴝鸲鴛鸳鴕鸵鷥鸶鷙鸷鴯鸸鴰鸹鵂鸺鴿鸽"
    "鸞鸾鴻鸿鵓鹁鸝鹂鵑鹃鵠鹄鵝鹅鵒鹆鷳鹇鷴鹇鵜鹈鵡鹉鵲鹊鶓鹋鵪鹌鵯鹎鵬鹏鶉鹑鶘鹕鶚鹗鶻鹘鶿鹚鷀鹚鶥鹛鶩鹜鷂鹞"
    "鶼鹣鶴鹤鸚鹦鷓鹧鷚鹨鷯鹩鷦鹪鷲鹫鷸鹬鷺鹭鷹鹰鸌鹱鸛鹳鹺鹾麥麦麩麸黃黄黌黉黷黩黽黾黿鼋鼉鼍鼴鼹齊齐齏齑齒齿"
    "齔龀齟龃齡龄齙龅齠龆齜龇齦龈齬龉齪龊齲龋齷龌龍龙龔龚龕龛龜龟"
)  # fmt: skip
_TO_SIMPLIFIED = str.maketrans(_TRADITIONAL_PAIRS[0::2], _TRADITIONAL_PAIRS[1::2])


def simplified(text: str) -> str:
    """``text`` with traditional characters folded to simplified ones, character for character."""
    return text.translate(_TO_SIMPLIFIED)


_Trie = dict[str, "_Trie"]  # a character -> the words' rest after it; "" marks a word's end


def alternation(words: Iterable[str]) -> str:
    """A regex alternation of literal ``words`` in which the longest form at a position wins, written as a
    trie of their characters (报告医师|报告医生 as 报告医(?:师|生)): Python's regex engine tries an alternation's
    branches one by one, so hundreds of words cost hundreds of tries at every position, and a trie a few."""
    trie: _Trie = {}
    for word in set(words):
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return "|".join(_branches(trie)) + ("|" if "" in trie else "")


def _branches(node: _Trie) -> list[str]:
    """The alternatives of a trie node: each character and the pattern of its rest, a word that ends after the
    character tried after the longer ones that go on (a greedy optional group)."""
    branches = []
    for char, rest in sorted(node.items()):
        if not char:
            continue
        after = _branches(rest)
        group = after[0] if len(after) == 1 and "" not in rest else f"(?:{'|'.join(after)})" if after else ""
        branches.append(re.escape(char) + (f"{group}?" if "" in rest and group else group))
    return branches
