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


def alternation(words: Iterable[str]) -> str:
    """A regex alternation of literal ``words``, longest first, so the longest form at a position wins."""
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))
