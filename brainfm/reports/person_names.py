"""Person names in Chinese report text, wherever a report puts them.

A candidate is a surname (single or compound) and one or two given characters, as jieba's part-of-speech
tagger (``jieba.posseg``, which tags person names ``nr``) segments the text. It counts as a name where names
stand: after a role word (报告医师：, 家属, 其女, 祖母, 术者, Dr., Ms., 通知…) or a department and a blank (放射科 凌霄),
before a title (医生, 主任, 女士, 家长…), next to the patient's sex and age, in a signature line or a line of its
own at the end, or anywhere when the tagger reads a full name (a surname and two given characters). A veto
keeps clinical words out: no word of the report lexicon (its words that are no identifier included: drugs,
eponyms, ethnic groups, shifts, languages) or of a list of surname-led clinical words (高信号, 白质, 左侧…)
may be or cross a candidate, no candidate is a drug's stem (贝伐珠|单抗), and given names never hold
characters such as 脑 or 侧. Where only a name can stand, words such as 黄河 or 文静 still count, and so do
names without a surname (格桑卓玛, 热依拉·艾买提) that the tagger reads or that stand first in a line before
the sex. Right after a role word and a separator, a name standing alone (up to a space, the line's end or a
list separator) counts whatever its characters (报告医生：阿不都萨拉木) unless it is clinical or ordinary words
only (审核：同上). A name spaced out character by character (杨 小 梅, 司马 瑜) counts where it stands as a
whole, not inside a line spaced out by OCR. A name found once is found wherever the report repeats it. A name
is ``staff`` when a staff role word, title or signature line says so; names in Latin script are left to deid_text's patterns. The
text is read in simplified characters (deid_text folds traditional ones first, one for one).

Written here rather than taken from a general NER library: jieba is small and fast enough for every
report of a hospital, and the places names stand in radiology reports are few and known.

The tagger is loaded once per process, on first use, with its own ``jieba.Tokenizer`` (no global state);
each run of Chinese characters is cut once for every position in it, the HMM (which reads names the
dictionary lacks) is run with numpy, and only where a name could stand past the veto. Cuts are cached per
run, so a hospital's repeated sentences are cut once (:func:`clear_caches` forgets them, for timing).
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import NamedTuple

import jieba
import jieba.posseg
import numpy as np
from jieba.posseg.viterbi import MIN_FLOAT

from brainfm.reports import lexicon
from brainfm.reports.lexicon import alternation

# Chinese surnames: the most frequent (about 85% of the population), then the rest of the Hundred Family
# Surnames (百家姓) and the other surnames of today's national rankings (Cantonese 冼 禤 区, Korean 朴,
# Hui 冶 哈…); not 年, which follows a number in nearly every report (2023年, 10年).
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
    "姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施"
    "文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷"
    "盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷"
    "晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝禤亓訾仝笪郇邰"
    "郦阙蔺谌琚逯隗扈乜晁昝弓伏冀郜蔚茅鞠燕荆粟练衣佴邴厍嵇钭轩帅缑亢况芮羿储汲邸桓郏浦麴糜宓郗仰伊韶蓟鄂索籍"
    "赖屠胥莘贡逄扶堵宰雍璩濮寿茹宦鱼慕戈庾暨匡禄殳沃夔阚巢蒯竺郄郅楼洪仉庹滑宣花杭盖闻皮钮裘荀羊於惠封井富巴"
    "尉牧班秋暴厉戎祖幸印咸苍劳郤阎习衡满弘利越勾融毋冼揭贲郁傅萧乐元凤廉奚昌禹狄贝湛谈强支经干诸松乌山蓬束薄宿"
    "怀阴能双通别充容慎终居步都国广东隆那空养须丰相后红权益公晋楚法汝鄢钦归海郈有琴伯赏墨哈谯爱言福水云平酆计"
    "危家从代占但战过敬展银雒母操原冶朴区檀智綦官南栗盘位豆漆卿鹿辜宾呼斯奉尧修赫门初信铁巨普旷闭来"
)
COMPOUND_SURNAMES = (
    "欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "令狐", "慕容", "万俟", "尉迟", "公孙", "长孙", "宇文", "司徒",
    "司空", "夏侯", "端木", "轩辕", "钟离", "闻人", "赫连", "澹台", "公冶", "宗政", "濮阳", "淳于", "单于", "太叔",
    "申屠", "仲孙", "鲜于", "闾丘", "东郭", "南宫", "西门", "百里", "呼延", "拓跋", "独孤", "左丘", "谷梁", "巫马",
    "公西", "漆雕", "乐正", "壤驷", "公良", "段干", "梁丘", "颛孙", "亓官", "司寇", "羊舌", "微生", "东门", "公羊",
    "第五", "南门", "仉督", "子车", "夹谷", "宰父", "归海", "伯赏", "完颜", "纳兰", "耶律", "贺兰", "叔孙", "季孙",
    "东野", "太史", "公仪", "公伯", "公祖", "乞伏", "达奚", "斛律",
)  # fmt: skip
# Labels of the physicians on a report; deid_text's labelled-field rule uses them too.
STAFF_LABELS = (
    *(a + b for a in ("报告", "审核", "诊断", "书写", "记录", "申请", "送检", "复核", "签发", "检查") for b in ("医师", "医生", "者", "人")),
    "医师签名", "签名", "技师", "医师", "医生", "报告", "审核",
)  # fmt: skip
# Words after which a member of staff is named (报告医师：王芳, 由技师石磊操作); deid_text's rules use them too.
STAFF_ROLES = (
    *STAFF_LABELS, "主任", "主任医师", "副主任医师", "主治医师", "住院医师", "护士", "护师", "护士长", "大夫", "教授",
    "操作者", "操作员", "操作技师", "扫描技师", "技术员", "录入", "录入者", "打印者", "阅片", "阅片医师", "会诊医师",
    "复核", "审阅", "签发", "核对", "核对者", "签字", "医师签字", "主诊医师", "值班医师", "值班医生", "值班", "总值班",
    "口述", "登记", "抄送", "质控", "质控员", "打印", "整理", "校对", "会诊专家", "专家", "电子签名", "参加者", "参会者",
    "阅片者", "主刀", "送检", "开单", "转诊", "申请", "讨论者", "记录", "记录员", "书记员", "打印人", "录入人", "操作人",
    "核对人", "签收人", "接收人", "参加人员", "参会人员", "与会人员", "出席人员", "参与者", "参与人员", "讨论人员",
    "会诊人员", "护理师", "放射师", "医检师", "Consultant", "Radiologist", "Physician", "Reported by",
    "Reviewed by", "Verified by", "Approved by", "Checked by", "Dictated by", "Signed by", "Read by", "Reported",
    "Reviewed", "Verified", "Approved", "Checked", "Dictated", "Signed", "Referring physician", "Technologist",
    "术者", "手术者", "主刀医生", "主刀医师", "助手", "麻醉医师", "麻醉医生", "确认", "复阅", "审阅者", "Dr.", "Dr",
    "Prof.", "Prof", "村医", "乡村医生", "书写", "协调员", "录入员", "登记员", "打印员", "校对员", "审核员",
    "覆核", "覆阅",  # 覆 is simplified too, so never folded to 复: words of their own
    "鉴定人", "研究者", "组长", "质控组长", "交班", "接班", "交班人", "接班人", "随访护士", "PI", "Nurse", "nurse",
    "Doctor", "doctor", "阅片人", "调取人", "成员", "秘书", "助理", "主管医生", "主管医师", "首诊医生", "主治",
    "评估员", "评估者", "仲裁", "仲裁者", "仲裁人", "监查员", "护理员", "联络人", "随访人", "随访员", "随访者",
)  # fmt: skip
# Kinship words: a relative's name may follow one (监护人：祖母 王秀英), and none is a name (祖母 is tagged one).
_KINSHIP_WORDS = (
    "祖母", "祖父", "外祖母", "外祖父", "奶奶", "爷爷", "外婆", "外公", "姥姥", "姥爷", "伯父", "伯母", "叔叔", "婶婶",
    "舅舅", "舅妈", "姑姑", "姑父", "姨妈", "姨父", "爱人", "老伴", "儿媳", "女婿", "外孙女", "侄子", "侄女", "外甥",
    "外甥女", "养父", "养母", "继父", "继母", "兄弟", "姐妹", "之子", "之女", "长子", "次子", "长女", "次女",
)  # fmt: skip
# Words after which a relative is named (家属黄河签字, 其女王小红).
KIN_ROLES = (
    "家属", "其子", "其女", "其妻", "其夫", "其父", "其母", "其兄", "其弟", "其姐", "其妹", "其孙", "其孙女", "配偶",
    "被鉴定人", "友人",
    "丈夫", "妻子", "儿子", "女儿", "父亲", "母亲", "监护人", "联系人", "陪同人", "陪同者", "陪同", "代诉人", "委托人",
    "亲属", "家长", "其女儿", "其儿子", "其丈夫", "其妻子", "其父亲", "其母亲", "其女婿", "其儿媳", "翻译", "护工", "陪检", "陪护", "护送", "邻居", "同事", "朋友", "孙子", "孙女", "外孙", "哥哥", "姐姐",
    "弟弟", "妹妹", "照顾者", "照护者", "家佣", "保姆", *_KINSHIP_WORDS, "Mr.", "Mr", "Mrs.", "Mrs", "Ms.", "Ms", "Miss",
)  # fmt: skip
# Verbs of telling and prepositions, after which a name or a common noun stands (通知王芳, 由岑翔报告; 告知程序).
_TELL_VERBS = ("通知", "告知", "联系", "电告", "转告", "致电", "告诉", "交代", "由", "经", "请", "与")
# Patient words: right after one (no separator), only a name before the sex or a full name counts (患者高热…).
_PATIENT_ROLES = ("患者", "病人", "患儿", "病员", "姓名", "受检者", "被检者", "就诊者")
_STAFF_TITLES = (
    "医生", "医师", "主任", "主任医师", "副主任", "主治医师", "护士长", "护士", "护师", "老师", "教授", "大夫", "技师",
    "院长", "科长", "博士",
)  # fmt: skip
_PERSON_TITLES = ("先生", "女士", "小姐", "同志", "阿姨", "家长", "家属")  # 尊敬的王芳家长
# What follows a name in running text: a title, the sex, or what a person does in a report…
_NAME_NEXT_WORDS = (
    *_STAFF_TITLES, *_PERSON_TITLES, "男", "女", "签字", "签名", "陪同", "同意", "知情", "确认", "表示", "要求", "沟通",
    "代诉", "诉", "述", "称", "到场", "在场", "拒绝", "了解", "知晓", "接听", "回电", "审核", "复核", "报告", "阅片",
    "会诊", "操作", "书写", "记录", "核对", "签发", "电话", "手机", "主诉", "建议", "认为", "协助", "嘱", "负责", "核实",
    "指导",
)  # fmt: skip
# …and words that follow any noun (a name after a role word: 医师夏天已阅).
_NOUN_NEXT_WORDS = ("已", "并", "等", "后", "因", "于", "及", "和", "曾", "也", "亦")
# Characters that may stand right before a bare surname and its title (由王主任审核, 神经内科王医生).
_BEFORE_SURNAME = frozenset("由经请与和及向给被同找让叫的科室组")
# Surnames that are everyday words too (请向医生咨询, 经治医生, 家庭医生): never a name on their own, and a name
# only where jieba reads one or leaves the given characters loose (:meth:`_Reader.candidate`).
WORD_SURNAMES = frozenset(
    "向和于应时全单尚查边连关包管成乐元强支经干诸松山束薄宿怀阴能双通别充容慎终居步都国广东隆那空养须丰相后红权益"
    "公法归海有伯爱言福水云平计危家从代占但战过敬展母原区智官南盘位豆宾呼斯奉修门初信铁巨普闭来谈晋楚凤昌贝乌琴"
    "鹿银钦汝操"
)

# Surname-led clinical and report words (many tagged as names or places by jieba: 安静 nr, 马尾 nrt, 海马 ns)
# and role words that stand before a title (管床医生). With the report lexicon and its words that are no
# identifier (drugs, eponyms, ethnic groups…), none may be or cross a name.
_CLINICAL_WORDS = (
    "高信号", "高密度", "高度", "高龄", "高热", "高烧", "高血压", "高血脂", "高脂血症", "高年资", "高场", "高分辨",
    "高级别", "高灌注", "高代谢", "白质", "白色", "白质病变", "白细胞", "白血病", "黄韧带", "黄色", "黄斑", "黄疸",
    "黄体", "马尾", "马尾神经", "马蹄", "马鞍", "左侧", "左右", "左额", "左颞", "左顶", "左枕", "左旋", "左心", "左房",
    "左室", "左半", "石化", "金属", "金属伪影", "周围", "周边", "周身", "周期", "周径", "常规", "常见", "余脑",
    "余脑实质", "余部", "余未见", "余所见", "海马", "丘脑", "苍白球", "钟形", "向下", "向上", "向左", "向右", "向前",
    "向后", "向内", "向外", "方位", "方向", "方面", "方式", "方法", "方案", "病史", "时相", "时间", "时期", "安静",
    "安置", "明显", "明确", "全脑", "全部", "全身", "全科", "全程", "成像", "成人", "单发", "单纯", "单侧", "解剖",
    "管腔", "管壁", "管床", "管径", "连续", "边界", "边缘", "关系", "包膜", "包绕", "包括", "包裹", "尚可", "尚清",
    "符合", "曲张", "游离", "阳性", "阴性", "查体", "康复", "麻醉", "麻木", "梅毒", "窦汇", "窦腔", "宫颈", "房间隔",
    "屈曲", "艾滋", "尤其", "迟发", "卫生", "温度", "齐平", "易于", "权重", "燕尾", "沙漏", "程度", "谷氨酸", "平扫",
    "扫描", "复查", "随访", "临床", "皮层", "皮质", "皮下", "皮肤", "花环", "融合", "暴露", "封闭", "劳累", "利于", "习惯",
    "满意", "揭示", "印象", "宣教", "窦口", "陈述", "铜蓝蛋白", "谢谢", "无名氏", "修补", "修补术", "亚低温",
    "越南籍",  # a nationality
)  # fmt: skip
# Characters of clinical text that Chinese given names practically never hold.
_NON_NAME_CHARS = frozenset(
    "脑髓叶侧质号影灶瘤肿囊膜窦沟池状约见未呈示及伴旁缘稍减性型期度例次个岁病症炎痛伤损梗塞死压扫描查检诊断"
    "考虑疑似议访床否异规象变迫移区处片斑团块部内外下的了是在与或为等所论随请无不已较并且后前右双两低增窄薄扩"
    "厚径距腔管壁室节段核窝孔隙椎颅骨颈胸腹盆肝肾肺胃肠男女某第其该此各每诉述科院由患之阅"
)
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
_HAN_RUN = re.compile(r"[\u4e00-\u9fd5]+")  # what jieba reads as Chinese (its re_han)
_NOUN_TAGS = frozenset({"n", "nr", "nrfg", "nrt", "ns", "nt", "nz", "ng", "t", "j", "x"})
# Tags of a word that may be a given name where a name may end (医生许立，: jieba reads 许立 and 万方 as numerals).
_GIVEN_NAME_TAGS = _NOUN_TAGS | {"m"}
# A separator after a role word: a colon, 】 or a box-drawing bar, maybe after a note (家属（丈夫）：) or an English
# or Portuguese gloss of the label (报告医师 Reported by：, 报告医生 Médico：).
_SEP = (
    r"[ \t\u3000]*(?:(?:[（(][^（）()\n]{1,6}[)）][ \t]*)?(?:[A-Z][A-Za-zÀ-ÿ.'’ ]{0,30}?[ \t]*)?(?:[:：│｜|]|】[:：]?))?"
    r"[ \t\u3000]*(?:为|是)?[ \t\u3000]*"
)
# A role word, maybe with a title that makes it staff (核对医生：, 护送医生), then a separator.
_ROLE = re.compile(
    rf"(?P<role>{alternation((*STAFF_ROLES, *KIN_ROLES, *_TELL_VERBS, *_PATIENT_ROLES))})(?P<title>医师|医生)?"
    rf"(?P<sep>{_SEP})"
)
# A role word ending right at a position (the search's endpos): 由|王主任, 通知|李医生.
_ROLE_END = re.compile(rf"(?:{_ROLE.pattern})$")
_TITLE = re.compile(rf"(?P<staff>{alternation(_STAFF_TITLES)})|{alternation(_PERSON_TITLES)}")
_NAME_NEXT = re.compile(alternation(_NAME_NEXT_WORDS))
_NOUN_NEXT = re.compile(alternation(_NOUN_NEXT_WORDS))
# Separators between the names of a signature block or a list (王芳/李明, 王芳、李明, 王芳，李明, 王芳；李明, 王芳  李明).
# A note in parentheses after a name is passed over (鉴定人：王芳（主任法医师）、李明; 家属：王芳（妻）、李明).
_CHAIN = re.compile(r"(?:[（(][^（）()\n]{1,10}[)）])?(?:[ \t]*[/／、，,;；|&＆][ \t]*|[ \t]+)")
_SEX = re.compile(
    r"(?<![\u4e00-\u9fff])(?:男|女)(?:性)?(?![\u4e00-\u9fff])|性别[ \t]*[:：]?[ \t]*(?:男|女)"
    r"|(?<![A-Za-z0-9])[MF](?![A-Za-z0-9À-ÿ])"
)
_AGE = re.compile(r"\d{1,3}[ \t]*(?:岁|周岁|Y\b|y\b)|年龄")
# A name right before the patient's sex: 王芳，女 / 王芳（WANG FANG），男 / 王芳 女.
_SEX_NEXT = re.compile(
    r"(?:[（(][^（）()\n]{1,30}[)）])?[ \t]*[，,、/ \t（(]*(?:男|女|[MF](?![A-Za-zÀ-ÿ]))(?!士)"
)
# What may follow the patient's name right after 患者 (患者王芳诉…, 患者于娟于2023年…, 患者周全于今日…).
_PATIENT_NEXT = re.compile(r"诉|主诉|自诉|因|于(?=\d|今|昨|前|近|本|我|外|上|下|当|入|次)")
# A department named before a name (通知：神经外科/郇凯, 送检：耳鼻喉科 柏青), and the characters that end one.
_DEPARTMENT = re.compile(r"[\u4e00-\u9fff]{1,8}?(?:科|室|病区|病房|中心|组)[ \t]*[/、]?[ \t]*")
_DEPARTMENT_ENDS = frozenset("科室组")
# A department's last character and a blank, after which a name may stand alone (会诊意见（放射科 凌霄）：).
_DEPARTMENT_BLANK = re.compile(r"[科室][ \t\u3000]+")
# Names without a surname (Tibetan, Uyghur, Mongolian: 扎西顿珠, 热依拉·艾买提), parts joined by a middle dot.
_JOINED_NAME = re.compile(r"[\u4e00-\u9fff]{2,8}(?:[·•・][\u4e00-\u9fff]{1,8})*")
_NAME_DOTS = re.compile(r"[·•・]")
# jieba's tags of function words: prepositions, adverbs, conjunctions, particles, directions, pronouns, numerals
# and measure words.
_FUNCTION_TAGS = frozenset({"p", "d", "c", "u", "f", "r", "m", "q"})
# Tags of a single character that ends no name cut from the end of its run (prepositions, adverbs, conjunctions,
# particles, pronouns); measure words and numerals may (白玛|次仁: 次 is a measure word).
_RUN_END_TAGS = frozenset({"p", "d", "c", "u", "r"})
# Dates and times a signature line may hold besides names, and the separators it may hold.
_DATE_TIME = re.compile(
    r"(?:19|20)\d{2}[ \t]*[-/.年][ \t]*\d{1,2}[ \t]*[-/.月][ \t]*\d{1,2}[ \t]*日?|\d{1,2}[:：]\d{2}(?:[:：]\d{2})?"
)
# A name in Chinese after the name in Latin script: in parentheses (Lin, Yi-Hsuan（林宜萱）) or after a slash
# (Chen Yi-ling / 陳怡伶).
_GLOSS = re.compile(
    r"[A-Za-z][ \t]*(?:[（(](?=[\u4e00-\u9fff]{2,4}[)）])|[/／][ \t]*(?=[\u4e00-\u9fff]{2,4}(?![\u4e00-\u9fff])))"
)
# What makes a name-like word an eponym (巴宾斯基征, 霍纳综合征, 韦氏评分): a name read anywhere is no name
# where one of these follows within a few characters, or ends it.
_EPONYM = re.compile(r"综合征|征(?![求询得])|氏|反射|试验|现象|分级|分型|评分|量表|定律|手法")
_EPONYM_REACH = 3  # characters after a name read anywhere in which an eponym word may start
_SIGNATURE_REST = re.compile(r"[\s/、,，;；|·.\-—()（）]*")
_MAX_VETOED = 8  # the longest vetoed word looked for across a candidate's edge
# A vetoed word: Chinese characters, the parts of an eponym maybe joined by a hyphen (吉兰-巴雷).
_VETOED_FORM = re.compile(r"[\u4e00-\u9fff]+(?:-[\u4e00-\u9fff]+)*")
# The Chinese endings of generic drug names (贝伐珠|单抗, 左乙拉|西坦): a name read never holds one nor ends within
# _DRUG_REACH characters of one in its run, as it is then the drug's stem.
_DRUG_ENDING = re.compile(alternation(e for e in lexicon.DRUG_ENDINGS if not e.isascii()))
_DRUG_REACH = 1
_HMM_WINDOW = 6  # characters from a surname that the HMM reads: a name and what follows it
_FOREIGN_WINDOW = 8  # characters the HMM reads for a name without a surname (阿依古丽, 次仁旺堆)
_LONGEST_NAME = 12  # characters, middle dots included (古丽娜尔·吐尔逊)
# jieba's dictionary frequency from which a word is too common to be read as a given name on its own: given
# names that are words sit below it (建平 528, 红梅 189), common words above it (有效 7151, 信号 2402).
_COMMON_WORD_FREQ = 1000
# Below this frequency a noun of jieba's dictionary standing alone after a role label may be a name (宝音 4).
_RARE_NOUN_FREQ = 10
_LONGEST_CUT_NAME = 4  # characters of a name cut from the end of its run with no separator (卓玛央宗)


@dataclass(frozen=True)
class PersonName:
    """A name at ``text[start:end]``; ``staff`` when it names a member of staff, not the patient or family."""

    start: int
    end: int
    staff: bool


@dataclass(frozen=True)
class _Candidate:
    """A surname-led candidate: where it ends, jieba's tag (``x`` where the given characters are loose or an
    uncommon word, ``w`` where they are a common word) and whether the tagger reads a full name (``nr``, a
    surname and two given characters, or a compound surname and one or two)."""

    end: int
    tag: str
    strong: bool


@cache
def _tagger() -> jieba.posseg.POSTokenizer:
    """jieba's tagger with a dictionary of its own, loaded once per process on first use."""
    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    return jieba.posseg.POSTokenizer(tokenizer)


@cache
def vetoed_words() -> tuple[frozenset[str], frozenset[str]]:
    """The words no name may be or cross, and their beginnings of two characters or more."""
    words = [
        *_CLINICAL_WORDS,
        *KIN_ROLES,
        *lexicon.LOCATIONS,
        *lexicon.CATEGORY_KEYWORDS,
        *lexicon.WEAK_TUMOR_KEYWORDS,
        *lexicon.FINDING_WORDS,
        *lexicon.NEGATION_CUES,
        *lexicon.UNCERTAINTY_CUES,
        *lexicon.NORMAL_CUES,
        *lexicon.HEDGE_WORDS,
        *lexicon.SIDE_WORDS,
        *lexicon.EFFACED_STRUCTURES,
        *lexicon.RECOMMENDATION_CUES,
        *(form for forms in lexicon.LOCATION_FORMS.values() for form in forms),
        *lexicon.NOT_IDENTIFIER_WORDS,
    ]
    forms = {form for w in words for form in (w, w.replace("-", ""))}  # 吉兰-巴雷 and 吉兰巴雷
    vetoed = frozenset(w for w in forms if _VETOED_FORM.fullmatch(w) and len(w) <= _MAX_VETOED)
    return vetoed, frozenset(w[:k] for w in vetoed for k in range(2, len(w) + 1))


class _Hmm(NamedTuple):
    """jieba.posseg's HMM (states: a position in a word, B/M/E/S, and a tag) as numpy arrays, states sorted."""

    states: list[tuple[str, str]]
    start: np.ndarray  # log probability of each state first
    trans: np.ndarray  # log probability of each state after each state, -inf where jieba has no transition
    follows: np.ndarray  # whether jieba has a transition from each state to each state
    has_next: np.ndarray  # states some transition leaves
    # For each character: the states jieba allows for it (sorted indices), and the log probability of each
    # emitting it.
    char_states: dict[str, tuple[np.ndarray, np.ndarray]]


@cache
def _hmm() -> _Hmm:
    """jieba.posseg's HMM, converted once per process on first use."""
    states = sorted(jieba.posseg.trans_P)
    index = {state: i for i, state in enumerate(states)}
    trans = np.full((len(states), len(states)), -np.inf)
    for state, following in jieba.posseg.trans_P.items():
        for y, p in following.items():
            trans[index[state], index[y]] = p
    char_states: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for char, allowed in jieba.posseg.char_state_tab_P.items():
        indices = np.array(sorted(index[state] for state in allowed))
        char_states[char] = indices, _emission(states, char, indices)
    return _Hmm(
        states,
        np.array([jieba.posseg.start_P[state] for state in states]),
        trans,
        np.isfinite(trans),
        np.array([bool(jieba.posseg.trans_P[state]) for state in states]),
        char_states,
    )


def _emission(states: list[tuple[str, str]], char: str, indices: np.ndarray) -> np.ndarray:
    """The log probability of the states at ``indices`` emitting ``char``."""
    return np.array([jieba.posseg.emit_P[states[i]].get(char, MIN_FLOAT) for i in indices])


def _viterbi(chars: str) -> list[tuple[str, str]]:
    """The states jieba.posseg's HMM reads ``chars`` in. Written here rather than calling
    ``jieba.posseg.viterbi``, whose loops over the model's dicts cost most of the recogniser's time: the same
    sums in the same order on numpy arrays (a state after those with a transition into it), the same ties
    (to the greatest state, as its ``max`` over ``(score, state)``), several times faster."""
    hmm = _hmm()
    every = np.arange(len(hmm.states))
    unknown = (every, None)  # a character jieba's table lacks may be in any state

    states, emission = hmm.char_states.get(chars[0], unknown)
    scores = hmm.start[states] + (_emission(hmm.states, chars[0], states) if emission is None else emission)
    back: list[tuple[np.ndarray, np.ndarray]] = []  # per character: its states, the best before each
    for char in chars[1:]:
        leaving = hmm.has_next[states]
        states, scores = states[leaving], scores[leaving]
        reachable = hmm.follows[states].any(axis=0)
        allowed, emission = hmm.char_states.get(char, unknown)
        kept = reachable[allowed]
        if emission is not None and kept.any():
            following, emission = allowed[kept], emission[kept]
        else:  # a character the table lacks, or none of its states reachable: any reachable state
            following = np.flatnonzero(reachable)
            emission = _emission(hmm.states, char, following)
        totals = (scores[:, None] + hmm.trans[states[:, None], following]) + emission
        best = len(states) - 1 - totals[::-1].argmax(axis=0)  # argmax takes the first of ties: rows reversed
        scores = totals[best, np.arange(len(following))]
        back.append((following, states[best]))
        states = following
    state = states[len(states) - 1 - scores[::-1].argmax()]
    path = [state]
    for following, before in reversed(back):
        state = before[np.searchsorted(following, state)]
        path.append(state)
    return [hmm.states[i] for i in reversed(path)]


def _hmm_words(chars: str) -> list[tuple[str, str]]:
    """(word, tag) pairs of ``chars`` as the HMM reads them (``jieba.posseg.POSTokenizer.__cut``)."""
    states = _viterbi(chars)
    words: list[tuple[str, str]] = []
    begin = done = 0
    for i, (position, tag) in enumerate(states):
        if position == "B":
            begin = i
        elif position in ("E", "S"):
            words.append((chars[begin if position == "E" else i : i + 1], tag))
            done = i + 1
    if done < len(chars):
        words.append((chars[done:], states[done][1]))
    return words


@lru_cache(maxsize=1 << 16)
def _route(run: str) -> tuple[int, ...]:
    """For each position of a run of Chinese characters, the end of the word starting there on jieba's most
    probable path through its dictionary. jieba computes the path from the end of the run backwards, so the
    path from any position is the dictionary cut of the rest of the run: one pass serves every position."""
    tokenizer = _tagger().tokenizer
    route: dict[int, tuple[float, int]] = {}
    tokenizer.calc(run, tokenizer.get_DAG(run), route)
    return tuple(route[k][1] + 1 for k in range(len(run)))


def _words(run: str, at: int = 0) -> Iterator[tuple[str, str]]:
    """jieba's (word, tag) pairs for a run of Chinese characters from ``at`` on, from the dictionary alone:
    ``jieba.posseg`` with ``HMM=False`` on ``run[at:]``."""
    route, tags = _route(run), _tagger().word_tag_tab
    while at < len(run):
        word = run[at : route[at]]
        yield word, tags.get(word, "x")
        at = route[at]


@lru_cache(maxsize=1 << 16)
def _hmm_tokens(run: str) -> tuple[tuple[str, str], ...]:
    """jieba's (word, tag) pairs for a few Chinese characters with the HMM, which also joins names the
    dictionary lacks (周|晓|明 -> 周晓明): ``jieba.posseg`` with ``HMM=True``, which re-reads each stretch of
    single characters of the dictionary cut that is no word. It costs far more than the dictionary alone, so
    it is run only on a surname followed by loose characters (:meth:`_Reader.tokens_from`)."""
    tokens: list[tuple[str, str]] = []
    for single, group in itertools.groupby(_words(run), key=_joinable):
        words = list(group)
        chars = "".join(word for word, _ in words)
        hmm = single and len(chars) > 1 and not _tagger().tokenizer.FREQ.get(chars)
        tokens += _hmm_words(chars) if hmm else words
    return tuple(tokens)


def _joinable(token: tuple[str, str]) -> bool:
    """A single character the HMM may join to its neighbours (jieba reads those past U+9FD5 as no Chinese)."""
    return len(token[0]) == 1 and token[0] <= "\u9fd5"


def clear_caches() -> None:
    """Forget the text seen so far, to time the recogniser on text it has never seen."""
    _route.cache_clear()
    _hmm_tokens.cache_clear()
    _drug_endings.cache_clear()


_SURNAME_SET, _COMPOUND_SET = frozenset(SURNAMES), frozenset(COMPOUND_SURNAMES)
_SURNAME_AT = re.compile(rf"(?=[{SURNAMES}]|{alternation(COMPOUND_SURNAMES)})")  # each place a surname starts


def _surname_length(text: str, at: int) -> int:
    if text[at : at + 2] in _COMPOUND_SET:
        return 2
    return 1 if text[at : at + 1] in _SURNAME_SET else 0


def _loose(word: str) -> bool:
    """A single character jieba left unjoined that may be part of a given name."""
    return len(word) == 1 and word not in _NON_NAME_CHARS


class _Reader:
    """A text's runs of Chinese characters and the name candidates at its positions."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.runs = [(m.start(), m.end()) for m in _CJK_RUN.finditer(text)]
        self._candidates: dict[int, _Candidate | None] = {}

    def run(self, at: int) -> tuple[int, int] | None:
        """The run of Chinese characters holding ``at``."""
        return next(((a, b) for a, b in self.runs if a <= at < b), None)

    def tokens_from(self, at: int) -> list[tuple[str, str]]:
        """Dictionary tokens of the run holding ``at``, from ``at`` on (in 其女王小红 jieba reads 女王, from 王
        on 王小红); by the HMM where a surname is followed by loose characters (a name the dictionary lacks:
        周|晓|明)."""
        run = self.run(at)
        if run is None:
            return []
        a, b = run
        tokens = list(itertools.islice(_words(self.text[a:b], at - a), 4))  # all that _read looks at
        surname = _surname_length(self.text, at)
        if len(tokens) > 1 and len(tokens[0][0]) <= surname and _loose(tokens[1][0]):
            return list(_hmm_tokens(self.text[at : min(b, at + _HMM_WINDOW)]))
        return tokens

    def foreign(self, at: int) -> int | None:
        """The end of a name without a surname starting at ``at`` (格桑卓玛, 热依拉·艾买提): the words jieba
        tags as names from there on, or three or more characters its dictionary leaves loose (a
        transliteration: 买|合|木|提), or the rest of a run that a middle dot ends (阿不来提·), and any parts
        joined to them by a middle dot (:func:`_joined_end`)."""
        run = self.run(at)
        if run is None or self.text[at] in _NON_NAME_CHARS:
            return None
        run_start, run_end = run
        words = (word for word, _ in _words(self.text[run_start:run_end], at - run_start))
        first = next(words)
        if len(first) > 1 and _ordinary_word(first):
            return None  # cheap: most role words are followed by ordinary words (神经|内科)
        end = at
        for word, tag in _hmm_tokens(self.text[at : min(run_end, at + _FOREIGN_WINDOW)]):
            if not tag.startswith("nr"):
                break
            end += len(word)
        if end - at < 2 and _NAME_DOTS.match(self.text, run_end):
            end = run_end
        elif end - at < 2:
            loose = list(itertools.takewhile(_loose, itertools.chain([first], words)))
            if len(loose) < 3:
                return None
            end = at + len(loose)
        return _joined_end(self.text, at, end)

    def candidate(self, at: int) -> _Candidate | None:
        """The surname-led candidate starting at ``at`` (a bare surname included), if any."""
        if at not in self._candidates:
            found = self._read(at)
            word_surname = self.text[at] in WORD_SURNAMES and _surname_length(self.text, at) == 1
            self._candidates[at] = None if found and word_surname and not _name_like(found) else found
        return self._candidates[at]

    def _read(self, at: int) -> _Candidate | None:
        surname = _surname_length(self.text, at)
        tokens = self.tokens_from(at) if surname else []
        if not tokens:
            return None
        word, tag = tokens[0]
        title = _TITLE.search(word, surname)
        if title and title.end() == len(word):  # 李医生 is one token: the title is no part of the name
            word = word[: title.start()]
            tokens[0] = word, tag
        clipped = next((k for k in range(surname, len(word)) if word[k] in _NON_NAME_CHARS), len(word))
        if surname < clipped < len(word):  # the HMM ran on into the next word: 严冰|阅, 曹丽华|之女
            word = word[:clipped]
            tokens[0] = word, tag
        if len(word) > surname:  # the token holds given characters: 王建华, 黄河, 司马光(明)
            if len(word) - surname > 2:
                return None
            length = len(word)
            # One given character in the token and one loose after it: 司马光|明, 黎国(ns)|华 (not 王芳(nr)|…).
            one_given = length == surname + 1 and (surname == 2 or not tag.startswith("nr"))
            if one_given and len(tokens) > 1 and _loose(tokens[1][0]):
                length += 1
            return _Candidate(at + length, tag, tag.startswith("nr") and length >= 3)
        covered, i = len(word), 1
        while covered < surname and i < len(tokens):  # a compound surname cut in two
            covered, i = covered + len(tokens[i][0]), i + 1
        if covered != surname:
            return None
        rest = tokens[i:]
        if rest and len(rest[0][0]) <= 2 and rest[0][1].startswith("nr"):  # 林|海涛, 欧阳|娜娜
            length = surname + len(rest[0][0])
            return _Candidate(at + length, "nr", length >= 3)
        given = rest[0][0] if rest else ""
        if (
            len(given) == 2
            and not _NON_NAME_CHARS.intersection(given)
            and word not in WORD_SURNAMES
            and not _NAME_NEXT.fullmatch(given)  # 王|主任, 王|签字: a title or what follows a name
        ):
            # A given name that is also a word (仝|海鹰, 何|建国); a common word (方|有效) counts only where a
            # separator sets a name apart.
            common = (_tagger().tokenizer.FREQ.get(given) or 0) >= _COMMON_WORD_FREQ
            return _Candidate(at + surname + 2, "w" if common else "x", False)
        given = 0
        for w, _ in rest[:2]:
            if not _loose(w):
                break
            given += 1
        return _Candidate(at + surname + given, "x" if given else tag, False)


def _name_like(found: _Candidate) -> bool:
    """jieba reads a name, or leaves the given characters loose (a name its dictionary lacks)."""
    return found.tag.startswith("nr") or found.tag == "x"


def _vetoed(text: str, start: int, end: int, inside: bool = False) -> bool:
    """A surname-led candidate is no name: a given character is one names never hold (余脑), or a clinical
    word overlaps it (:func:`_clinical`; with ``inside``, only one that crosses its edges)."""
    name = text[start + _surname_length(text, start) : end]
    return "某" in name or bool(_NON_NAME_CHARS.intersection(name)) or _clinical(text, start, end, inside)


def _clinical(text: str, start: int, end: int, inside: bool = False) -> bool:
    """A clinical word is ``text[start:end]``, lies in it or crosses its edge (康复科, 高信号); with ``inside``,
    one may lie in it (石化|军, where a name is bounded on both sides)."""
    words, beginnings = vetoed_words()
    for i in range(max(0, start - _MAX_VETOED + 1), end):
        for j in range(i + 2, min(len(text), i + _MAX_VETOED) + 1):
            if text[i:j] not in beginnings:
                break  # no vetoed word starts so
            crosses = i < start < j or j > end or (i, j) == (start, end)
            if j > start and (crosses or not inside) and text[i:j] in words:
                return True
    return _drug_stem(text, start, end)


def holds_clinical_word(span: str) -> bool:
    """A clinical word lies in ``span`` or is it (:func:`_clinical`): no name is there."""
    return _clinical(span, 0, len(span))


def _drug_stem(text: str, start: int, end: int) -> bool:
    """``text[start:end]`` holds the ending of a generic drug name or ends within :data:`_DRUG_REACH`
    characters of one in its run: the drug's stem (贝伐珠|单抗, 左乙拉|西坦)."""
    for a, b in _drug_endings(text):
        if b > start and a <= end + _DRUG_REACH and (a <= end or _CJK_RUN.fullmatch(text, end, a)):
            return True
    return False


@lru_cache(maxsize=64)
def _drug_endings(text: str) -> tuple[tuple[int, int], ...]:
    """Where the endings of generic drug names stand in ``text`` (found once per text: most have none)."""
    return tuple(m.span() for m in _DRUG_ENDING.finditer(text))


def _open(text: str, at: int, end: int, inside: bool = False) -> bool:
    """A surname-led name may start at ``at`` and end at ``end``: a surname and at most two given characters
    that no veto stops. The veto only grows with a candidate's end, so where it stops the shortest end a
    rule accepts, the rule need not run the tagger."""
    surname = _surname_length(text, at)
    return 0 < surname <= end - at <= surname + 2 and not _vetoed(text, at, end, inside)


def _given_name(reader: _Reader, at: int, inside: bool = False) -> _Candidate | None:
    """The candidate at ``at`` where it holds given characters and no veto stops it (``inside``: see
    :func:`_clinical`; the veto then no longer grows with the end, so that both ends are tried before the
    tagger runs)."""
    text, surname = reader.text, _surname_length(reader.text, at)
    ends = (at + surname + 1, at + surname + 2) if inside else (at + surname + 1,)
    found = reader.candidate(at) if any(_open(text, at, end, inside) for end in ends) else None
    if found is None or found.end - at <= surname or _vetoed(text, at, found.end, inside):
        return None
    return found


def _ordinary_word(word: str) -> bool:
    """A dictionary word that jieba does not tag as a name or a place (新生儿)."""
    tag = _tagger().word_tag_tab.get(word)
    return tag is not None and not tag.startswith(("nr", "ns", "nz"))


def inside_long_word(text: str, at: int) -> bool:
    """``at`` lies inside a dictionary word of three characters or more in jieba's cut of its run of Chinese
    characters (维吾尔|语): no name starts there."""
    window = _CJK_RUN.finditer(text, max(0, at - _MAX_VETOED), at + _MAX_VETOED)
    run = next((m for m in window if m.start() < at < m.end()), None)
    start = run.start() if run else at
    for word, _ in _words(run.group()) if run else ():
        if start + len(word) > at:
            return start < at and len(word) >= 3
        start += len(word)
    return False


def all_ordinary_words(span: str) -> bool:
    """jieba cuts ``span`` into words none of which it reads as a name or place or leaves unknown (简单|说明,
    于|昨日), so that no name is there to read; a transliterated name (``nrt``) counts as a word, as in reports
    it is an eponym (韦克斯勒, 阿尔茨海默). Chinese alone is cut by :func:`_hmm_tokens` (the same cut, cached and
    with the fast HMM), anything else by jieba itself."""
    if _HAN_RUN.fullmatch(span):
        tokens = _hmm_tokens(span)
    else:
        tokens = tuple((token.word, token.flag) for token in _tagger().lcut(span))
    return all(
        flag == "nrt" or not (flag.startswith(("nr", "ns", "nz")) or flag in ("x", "eng")) for _, flag in tokens
    )


def reads_as_words(span: str) -> bool:
    """A clinical word lies in ``span`` (Chinese), or jieba reads a verb or adverb in it or one that opens it
    with a conjunction, preposition or particle (查看, 进一步|处理, 及|家属): no name stands alone there,
    whatever its characters."""
    tokens = _hmm_tokens(span)
    return (
        holds_clinical_word(span)
        or any(flag.startswith(("v", "d")) for _, flag in tokens)
        or tokens[0][1].startswith(("p", "c", "u"))
    )


def one_common_word(span: str) -> bool:
    """jieba reads ``span`` (Chinese) as one word of its dictionary that is no name (项目, 来源, 申请人, 文静)."""
    tokens = _hmm_tokens(span)
    return len(tokens) == 1 and tokens[0][1] != "x" and not tokens[0][1].startswith("nr")


def _ends_name(text: str, end: int, told: bool = False) -> bool:
    """A name may end at ``end``: a word that follows names; else, unless ``told`` (right after a verb of
    telling, which a common noun follows as often: 经皮穿刺。), no more Chinese or a word that follows any
    noun."""
    if _NAME_NEXT.match(text, end):
        return True
    return not told and (
        end >= len(text) or not _CJK_RUN.match(text, end) or bool(_NOUN_NEXT.match(text, end))
    )


def _name_at(reader: _Reader, at: int, separated: bool, told: bool) -> int | None:
    """The end of the name starting at ``at`` right after a role word (and a separator, when ``separated``;
    ``told`` after a verb of telling), if one stands there: a surname-led candidate the tagger reads as a
    name, or a noun where a name may end (家属黄河签字, 医生：夏天; not 医生明确诊断, nor 告知程序已完成),
    or a name without a surname (翻译努尔兰协助). After a separator, the name takes in the rest of its
    run of characters (卓玛央宗, 米热古丽·阿不都), or the whole run where a name stands alone (姓名 乌云其其格),
    unless what follows is a usual next word or clinical; with no separator, the one or two characters that
    end the run when they are no word of their own (其子李成|龙，, 医师卓玛|央宗（)."""
    end = _name_end(reader, at, separated, told)
    if end is None or (told and not separated):
        return end
    text = reader.text
    if not separated:
        return _joined_end(text, at, _run_end(reader, at, end))
    whole = _JOINED_NAME.match(text, at)
    target = whole.end() if whole else end
    # The rest of the name's own part: 卓玛央|宗 is one name, 逯晓静|之子 is not.
    rest = text[end:target].split("·")[0]
    follows = _NAME_NEXT.match(text, end) or _NOUN_NEXT.match(text, end)
    if (
        end < target <= at + _LONGEST_NAME
        and not _NAME_NEXT.match(text, end)
        and not _NON_NAME_CHARS.intersection(rest)
        and not _clinical(text, at, target)
    ):
        return target
    alone = None if told or follows else _standing_alone(reader, at)
    return max(end, alone or end)


def _joined_end(text: str, at: int, end: int) -> int:
    """``end``, or, where a middle dot follows the name ``text[at:end]``, the end of the parts it joins to it
    (热依拉·艾买提), the last up to a word that follows names (艾尔肯·吐尔逊|认为)."""
    joined = _JOINED_NAME.match(text, at)
    if not (joined and joined.end() > end and _NAME_DOTS.match(text, end)):
        return end
    last = max(m.end() for m in _NAME_DOTS.finditer(text, at, joined.end()))
    follows = _NAME_NEXT.search(text, last + 1, joined.end())
    return follows.start() if follows else joined.end()


def _run_end(reader: _Reader, at: int, end: int) -> int:
    """``end``, or the end of its run of Chinese characters where the name takes in the one or two characters
    left there: no word that follows names or nouns, no character names never hold, no ordinary dictionary word
    of two characters, no verb or function word (医生王芳|说, 其子王芳|陪护), and four characters at most."""
    text = reader.text
    rest = _CJK_RUN.match(text, end)
    if (
        rest is None
        or rest.end() - at > _LONGEST_CUT_NAME
        or _NAME_NEXT.match(text, end)
        or _NOUN_NEXT.match(text, end)
        or _NON_NAME_CHARS.intersection(rest.group())
        or _clinical(text, at, rest.end())
    ):
        return end
    for word, tag in _words(rest.group()):
        if _ordinary_word(word) if len(word) > 1 else tag.startswith("v") or tag in _RUN_END_TAGS:
            return end
    return rest.end()


def _name_end(reader: _Reader, at: int, separated: bool, told: bool) -> int | None:
    """:func:`_name_at` before the name takes in the rest of its run."""
    text = reader.text
    found = _given_name(reader, at)
    if found is None and not told:
        # Up to a space or the line's end, a name may hold a clinical word (医生石化军 审核…).
        found = _given_name(reader, at, inside=True)
        found = None if found is None or _CJK_RUN.match(text, found.end) else found
    if found is not None and text[found.end : found.end + 1] not in (":", "："):  # a label (报告时间：)
        if found.strong or found.tag.startswith("nr"):
            return found.end
        if not told and found.tag == "x" and found.end - at == _surname_length(text, at) + 2:
            return found.end  # a surname and two given characters jieba lacks, after a role: 医生邬锦涛镇静后
        if (separated or found.tag in _GIVEN_NAME_TAGS) and _ends_name(
            text, found.end, told=told and not separated
        ):
            return found.end
        whole = found.end if separated or told else _run_end(reader, at, found.end)
        if whole > found.end:  # the whole run is the name: 医师白玛|次仁（, 医生贡布|扎西，
            return whole
    end = reader.foreign(at)
    foreign = end is not None and not _clinical(text, at, end) and text[end : end + 1] not in (":", "：")
    if foreign and _ends_name(text, end, told=told):
        return end
    return _standing_alone(reader, at) if separated and not told else None


def _standing_alone(reader: _Reader, at: int) -> int | None:
    """The end of a name standing alone after a separator (报告医生：阿不都萨拉木, 记录员：热依拉,
    医师：乌云其木格/斯琴): the run of Chinese characters from ``at``, parts joined by a middle dot, up to
    anything else (a space, the line's end, a list separator), that is no label, holds no role word, nothing
    clinical and not ordinary words alone (审核：同上, 家属：拒绝签字). Names without a surname hold characters
    that Han given names never do (阿不都, 其木格, 次仁), so these are only kept from its end (申请：神内,
    送检：放射科)."""
    text = reader.text
    run = _JOINED_NAME.match(text, at)
    if (
        run is None
        or run.end() - at > _LONGEST_NAME
        or _CJK_RUN.match(text, run.end())
        or text[run.end() - 1] in _NON_NAME_CHARS
        or text[run.end() : run.end() + 1] in (":", "：")
        or _ROLE.search(text, at, run.end())  # 值班医生伍思远
        or _clinical(text, at, run.end())
    ):
        return None
    tokens = [token for part in _NAME_DOTS.split(run.group()) for token in _words(part)]
    return None if all(_ordinary_token(*token) for token in tokens) else run.end()


def _ordinary_token(word: str, tag: str) -> bool:
    """A token no name is made of: a dictionary word that jieba tags as no name or place (维吾尔语 is ``nz``), a
    character Han given names never hold, or a function word (同|上)."""
    if len(word) > 1:  # a rare noun may be a transliterated name (宝音 4, 白音 6; 维吾尔语 is nz)
        rare = tag == "n" and (_tagger().tokenizer.FREQ.get(word) or 0) < _RARE_NOUN_FREQ
        return not (tag.startswith(("nr", "ns")) or rare)
    return word in _NON_NAME_CHARS or tag in _FUNCTION_TAGS


def _after_patient_word(reader: _Reader, at: int) -> int | None:
    """The end of the name right after 患者 with no separator: the tagger reads a name, or a usual next
    word follows (患者王芳诉…, 患者于娟于2023年…, 患者陈晓（女…), or a comma after a name-like word, or the
    parenthesis that closes a note after a surname that is no everyday word (（住院号…，患者苗嘉树）; not
    （患者平卧）); 患者高热… is no name."""
    text = reader.text
    found = _given_name(reader, at)
    if found is None:
        return None
    if found.strong or found.tag.startswith("nr"):
        return found.end
    if _name_like(found) and text[found.end : found.end + 1] in ("，", ","):  # 患者晏国华，2023年…
        return found.end
    if text[found.end : found.end + 1] in ("）", ")") and text[at] not in WORD_SURNAMES:
        return found.end
    return found.end if _SEX_NEXT.match(text, found.end) or _PATIENT_NEXT.match(text, found.end) else None


def _after_roles(reader: _Reader) -> Iterator[PersonName]:
    """Names after role words, maybe after a department (通知：神经外科/郇凯, 通知神经外科杨光明), and the names
    chained to them in a signature block or a list, each maybe after its own department (王芳/李明, 参加人员：
    郗宝林、邝敏, 参加人员：神经外科 包文斌、幸海鹏；放射科 冯涛)."""
    text = reader.text
    for m in _ROLE.finditer(text):
        role, at, separated = m.group("role"), m.end(), bool(m.group("sep"))
        staff, told = role in STAFF_ROLES or bool(m.group("title")), role in _TELL_VERBS
        if role in _PATIENT_ROLES and not separated:
            end = _after_patient_word(reader, at)
            if end is not None:
                yield PersonName(at, end, False)
            continue
        end = _name_at(reader, at, separated, told)
        if end is None and not separated and role in KIN_ROLES:
            # Right after a kinship word, a short run up to punctuation, surname-led or a name without one, is
            # the relative's name (其丈夫边巴，; not 邻居叫她).
            end = _standing_alone(reader, at)
            name_like = _surname_length(text, at) > 0 or reader.foreign(at) is not None
            end = end if end is not None and end - at <= _LONGEST_CUT_NAME and name_like else None
        if end is None and (separated or told):
            at, end = _after_department(reader, at, told)
        while end is not None:
            yield PersonName(at, end, staff)
            chain = _CHAIN.match(text, end)
            if not chain:
                break
            at = chain.end()
            end = _name_at(reader, at, True, told)
            if end is None:
                at, end = _after_department(reader, at, told)


def _after_department(reader: _Reader, at: int, told: bool) -> tuple[int, int | None]:
    """Where a name starts and ends after the department at ``at`` (神经外科 杨光明), standing apart as after a
    separator; ``(at, None)`` where no department (or a clinical word: 与周围组织…) or no name stands there."""
    department = _DEPARTMENT.match(reader.text, at)
    if department is None or _clinical(reader.text, at, department.end()):
        return at, None
    return department.end(), _name_at(reader, department.end(), True, told)


def _after_departments(reader: _Reader) -> Iterator[PersonName]:
    """A surname-led name standing alone after a department and a blank, up to anything but Chinese and no
    label (（放射科 凌霄）：, 收件人：神经内科 柏晨；), that the tagger reads as a name or leaves loose: staff."""
    text = reader.text
    for m in _DEPARTMENT_BLANK.finditer(text):
        found = _given_name(reader, m.end())
        if (
            found is not None
            and _name_like(found)
            and not _CJK_RUN.match(text, found.end)
            and text[found.end : found.end + 1] not in (":", "：")
        ):
            yield PersonName(m.end(), found.end, True)


def _before_titles(reader: _Reader) -> Iterator[PersonName]:
    """Names right before a title: 王建华医生, 高明主任, and a bare surname after a boundary (由李主任)."""
    text = reader.text
    for m in _TITLE.finditer(text):
        end = m.start()
        for at in range(max(0, end - 4), end):  # the longest candidate ending at the title
            # Between a department and the title, the name is all there is, and may hold a clinical word or be
            # cut otherwise by the tagger (外科|方向东|主任, 内科|安静|怡|主任).
            inside = at > 0 and text[at - 1] in _DEPARTMENT_ENDS
            found = reader.candidate(at) if _open(text, at, end, inside) else None
            if found is None or (found.end != end and not inside):
                continue
            after_boundary = (
                at == 0
                or not _CJK_RUN.match(text, at - 1)
                or text[at - 1] in _BEFORE_SURNAME
                or bool(_ROLE_END.search(text, max(0, at - 12), at))
            )
            if end - at == _surname_length(text, at):
                accept = after_boundary and text[at] not in WORD_SURNAMES
            else:
                accept = after_boundary or _name_like(found)
            if accept:
                yield PersonName(at, end, m.group("staff") is not None)
                break


def _in_lines(reader: _Reader) -> Iterator[PersonName]:
    """Names standing alone right before the patient's sex (王芳，女; without a surname, first in its line:
    扎西顿珠 男 45岁) or, read as names by jieba, in a line with the sex and age (王芳 46岁 女); and names in a
    line of names and dates only (王芳/李明 2023-05-12: a signature block; one name alone counts when jieba
    reads a name or when it is the report's last line)."""
    text = reader.text
    lines = [(m.start(), m.group()) for m in re.finditer(r"[^\n]+", text)]
    last = max((i for i, (_, line) in enumerate(lines) if line.strip()), default=-1)
    for i, (a, line) in enumerate(lines):
        demographic = bool(_SEX.search(line) and _AGE.search(line))
        undated = _DATE_TIME.sub(lambda d: " " * len(d.group()), line)
        names: list[tuple[int, _Candidate]] = []
        others = False  # the line holds Chinese that is no name
        for run in _CJK_RUN.finditer(undated):
            start, end = a + run.start(), a + run.end()
            found = reader.candidate(start) if _open(text, start, end) else None
            if (
                found is None
                or found.end != end
                or end - start <= _surname_length(text, start)
                or text[end : end + 1] in (":", "：")
            ):
                others = True
                joined = _JOINED_NAME.match(text, start)
                if (
                    joined
                    and not line[: run.start()].strip()
                    and _foreign_before_sex(reader, start, joined.end())
                ):
                    yield PersonName(start, joined.end(), False)
                continue
            names.append((start, found))
            if _SEX_NEXT.match(text, end) or (demographic and _name_like(found)):
                yield PersonName(start, end, False)
        signature = not others and not demographic and _SIGNATURE_REST.fullmatch(_CJK_RUN.sub("", undated))
        for start, found in names if signature else ():
            if len(names) > 1 or i == last or _name_like(found):
                yield PersonName(start, found.end, True)


def _foreign_before_sex(reader: _Reader, start: int, end: int) -> bool:
    """``text[start:end]``, first in its line, is a name without a surname right before the sex (其木格，女):
    no role word (患者，女), no common word first (新生儿), nothing clinical."""
    text = reader.text
    if not _SEX_NEXT.match(text, end) or _ROLE.match(text, start) or _clinical(text, start, end):
        return False
    first = _hmm_tokens(_CJK_RUN.match(text, start, end).group())[0][0]  # jieba cuts at a middle dot
    return not (len(first) > 1 and _ordinary_word(first))


def _tagged_names(reader: _Reader) -> Iterator[PersonName]:
    """Full names the tagger reads anywhere (经王建华会诊)."""
    text = reader.text
    for a, b in reader.runs:
        # A full name has three characters or more: most runs have no place for one, and are not cut.
        surnames = (m.start() for m in _SURNAME_AT.finditer(text, a, b))
        starts = {at for at in surnames if at + 3 <= b and _open(text, at, at + 3)}
        at = a
        for word, _ in _words(text[a:b]) if starts else ():
            found = reader.candidate(at) if at in starts else None
            if (
                found is not None
                and found.strong
                and not _vetoed(text, at, found.end)
                and not _EPONYM.search(text, at + 1, min(b, found.end + _EPONYM_REACH))
            ):
                yield PersonName(at, found.end, False)
            at += len(word)


def _glosses(reader: _Reader) -> Iterator[PersonName]:
    """A name in parentheses or after a slash right after the name in Latin script (Lin, Yi-Hsuan（林宜萱）,
    Chen Yi-ling / 陳怡伶): a surname-led candidate that no veto stops over all the characters there (not
    FLAIR（高信号）, T2/高信号)."""
    text = reader.text
    for m in _GLOSS.finditer(text):
        at, end = m.end(), _CJK_RUN.match(text, m.end()).end()
        if _open(text, at, end) and reader.candidate(at) is not None:
            yield PersonName(at, end, False)


# A name written with a blank after the surname and each given character (杨 小 梅, 司马 瑜, 被鉴定人邴 强驾驶…).
_SPACED = re.compile(rf"(?:{alternation(COMPOUND_SURNAMES)}|[{SURNAMES}])(?:[ ][\u4e00-\u9fff]){{1,2}}")
# A run of four single characters or more between blanks: a line OCR spaced out (江 苏 省 沭 阳 县).
_SPACED_OUT = re.compile(r"[\u4e00-\u9fff](?:[ ][\u4e00-\u9fff]){3}")
_SINGLE_BEFORE = re.compile(r"(?<![\u4e00-\u9fff])[\u4e00-\u9fff][ ]$")  # 门 | 诊 号
_SINGLE_AFTER = re.compile(r"[ ][\u4e00-\u9fff]|[ \t]*[:：]")


def _name_start(text: str, at: int) -> bool:
    """A name may start at ``at`` written right after what stands before: neither Chinese nor a digit, or a
    role word or a department (被鉴定人邴 强, 神经外科海 明); not the rest of a word (异常 鼻骨, 检查 头颅)."""
    return (
        at == 0
        or not (_CJK_RUN.match(text, at - 1) or text[at - 1].isdigit())  # 第24周 神经…: a unit
        or text[at - 1] in _DEPARTMENT_ENDS
        or bool(_ROLE_END.search(text, max(0, at - 12), at))
    )


def _spaced_name(text: str, start: int, end: int) -> bool:
    """``text[start:end]``, a surname and given characters after blanks, is a name that stands as a whole where
    a name may start: no single character before it after a blank nor after it (a spaced-out line: 门 诊 号),
    no label next, no stutter, no clinical word or department in it or across its end; in a spaced-out line,
    no ordinary words either (人 民 中 路)."""
    before, after = text[max(0, start - 3) : start], text[end : end + 3]
    if _SINGLE_BEFORE.search(before) or _SINGLE_AFTER.match(after) or not _name_start(text, start):
        return False
    name = text[start:end].replace(" ", "")
    rest = _CJK_RUN.match(text, end)
    joined = name + (rest.group() if rest else "")
    line_start, line_end = text.rfind("\n", 0, start) + 1, text.find("\n", end)
    spaced_out = _SPACED_OUT.search(text, line_start, line_end if line_end >= 0 else len(text))
    return not (
        name[0] == name[1]  # a stutter of dictation (钮 钮建平)
        or _DEPARTMENT.match(joined, _surname_length(joined, 0))  # 医阮 神 经 外 科 (OCR)
        or _vetoed(joined, 0, len(name))
        or (spaced_out and all_ordinary_words(name))
    )


def _spaced_names(reader: _Reader) -> Iterator[PersonName]:
    """Names spaced out character by character (杨 小 梅, 司马 瑜): :func:`_spaced_name`; where one is not, a
    name may start at its next character (班 尉 晓 娟)."""
    text, at = reader.text, 0
    while (m := _SPACED.search(text, at)) is not None:
        if _spaced_name(text, *m.span()):
            yield PersonName(*m.span(), False)
            at = m.end()
        else:
            at = m.start() + 1


def _repeated(text: str, found: set[PersonName]) -> Iterator[PersonName]:
    """Every other place a name found once (two characters or more) stands, where nothing else marks it as one
    (住院医师田野书写，田野的初稿…; 杨光明已复述), unless a clinical word crosses it there."""
    for name, staff in {text[n.start : n.end]: n.staff for n in found if n.end - n.start > 1}.items():
        at = text.find(name)
        while at >= 0:
            if not _clinical(text, at, at + len(name), inside=True):
                yield PersonName(at, at + len(name), staff)
            at = text.find(name, at + len(name))


def find_person_names(text: str) -> list[PersonName]:
    """Every person name in ``text``, in order; overlapping readings are joined, and a name is staff when
    any reading says so (通知王建华医生: after 通知, and before 医生). ``text`` is read in simplified
    characters (:func:`brainfm.reports.lexicon.simplified` folds traditional ones, at the same places)."""
    reader = _Reader(text)
    finders = (
        _after_roles, _after_departments, _before_titles, _in_lines, _glosses, _tagged_names, _spaced_names
    )
    found = {n for finder in finders for n in finder(reader)}
    found = sorted(found | set(_repeated(text, found)), key=lambda n: (n.start, -n.end))
    kept: list[PersonName] = []
    for name in found:
        if kept and name.start < kept[-1].end:
            last = kept[-1]
            kept[-1] = PersonName(last.start, max(last.end, name.end), last.staff or name.staff)
        else:
            kept.append(name)
    return kept
