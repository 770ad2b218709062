"""One test (or a few) per normalization rule in policytag/normalization.py."""

from __future__ import annotations

import pytest

from policytag.text import normalization as N


def run(rule, text):
    removed: list[str] = []
    return rule(text, removed), removed


# --------------------------------------------------------------------------- whitespace

def test_normalize_whitespace_line_breaks_bom_and_odd_spaces():
    out, _ = run(N.normalize_whitespace, "\ufeff第一行\r\n第\u200b二行\u00a0 \r第三\u3000行\t")
    assert out == "第一行\n第二行\n第三 行"


def test_normalize_whitespace_keeps_leading_indent():
    out, _ = run(N.normalize_whitespace, "      签名单位   ")
    assert out == "      签名单位"


# --------------------------------------------------------------------------- mojibake

def test_repair_mojibake_shifted_gbk_run():
    # from the CAST seed: "科普工作是學" garbled by decoding GBK one byte off
    ctx = "科普工作。科普工作是重点。科普活动。"
    out, removed = run(N.repair_mojibake, ctx + "重要使命,??破展ぷ魇菍W(xué)會主要業務")
    assert out == ctx + "重要使命,科普工作是學(xué)會主要業務"
    assert removed and removed[0].startswith("mojibake")


def test_repair_mojibake_recovers_trail_byte_and_drops_debris():
    ctx = "營造氛圍。營造環境。"
    out, _ = run(N.repair_mojibake, ctx + "發展?fàn)I造良好氛圍")
    assert out == ctx + "發展營造良好氛圍"


def test_repair_mojibake_drops_unrecoverable_debris():
    out, removed = run(N.repair_mojibake, "建設科普專家?guī)?、科普專家團隊")
    assert out == "建設科普專家、科普專家團隊"
    assert "dropped" in removed[0]


def test_repair_mojibake_leaves_real_question_marks():
    for text in ["这是什么?答案在后面。", "是什么?Yes", "是否需要?"]:
        assert run(N.repair_mojibake, text)[0] == text


# --------------------------------------------------------------------------- pinyin

def test_remove_pinyin_after_characters():
    out, removed = run(N.remove_pinyin, "科協(xié)發(fā)普字〔2021〕61號(hào)")
    assert out == "科協發普字〔2021〕61號"
    assert removed == ["pinyin annotations: 3"]


def test_remove_pinyin_keeps_numbering_and_latin_words():
    text = "(一)推广AI(ai)和APP(App)应用(2021—2025年)，市委宣传部(市文明办)"
    assert run(N.remove_pinyin, text)[0] == text


def test_remove_pinyin_fullwidth_brackets():
    assert run(N.remove_pinyin, "學（xué）會")[0] == "學會"


# --------------------------------------------------------------------------- traditional -> simplified

def test_to_simplified_converts_traditional():
    out, removed = run(N.to_simplified, "中國科協關於新時代加強學會科普工作的意見")
    assert out == "中国科协关于新时代加强学会科普工作的意见"
    assert removed and removed[0].startswith("traditional")


def test_to_simplified_leaves_simplified_text_alone():
    text = "显著提升著作权保护，了解干部队伍。"
    out, removed = run(N.to_simplified, text)
    assert out == text and removed == []


# --------------------------------------------------------------------------- injected symbols

def test_remove_injected_symbols_before_punctuation():
    out, removed = run(N.remove_injected_symbols, "加强科普◈★，提升素质◈★。")
    assert out == "加强科普，提升素质。"
    assert removed == ["injected symbols: 4"]


def test_remove_injected_symbols_line_bullets():
    assert run(N.remove_injected_symbols, "  • 索引号:123\n● 发布机构:科普处")[0] == "  索引号:123\n发布机构:科普处"


# --------------------------------------------------------------------------- spaced-out text

def test_join_spaced_out_text():
    assert run(N.join_spaced_out_text, "全 民 科 学 素 质 行 动")[0] == "全民科学素质行动"


def test_join_spaced_out_text_keeps_phrase_spaces():
    text = "关于大力加强科普能力建设 夯实创新发展基础的意见"
    assert run(N.join_spaced_out_text, text)[0] == text


# --------------------------------------------------------------------------- full-width punctuation

def test_fullwidth_punctuation_between_chinese():
    out, _ = run(N.fullwidth_punctuation, "科学素质是基础,是关键;责任单位:市科协!真的?")
    assert out == "科学素质是基础，是关键；责任单位：市科协！真的？"


def test_fullwidth_punctuation_leaves_numbers_and_urls():
    text = "1,000 at 16:53 see http://a.b/c?d=1"
    assert run(N.fullwidth_punctuation, text)[0] == text


def test_fullwidth_punctuation_percent_before_chinese():
    assert run(N.fullwidth_punctuation, "达16.7%,处于领先")[0] == "达16.7%，处于领先"


# --------------------------------------------------------------------------- repeated punctuation

@pytest.mark.parametrize("raw, clean", [
    ("学会，、协会", "学会、协会"),
    ("要求，，为推动", "要求，为推动"),
    ("位置，。党的", "位置。党的"),
    ("服务,,加强", "服务，加强"),
    ("落实,。", "落实。"),
])
def test_collapse_punctuation(raw, clean):
    assert run(N.collapse_punctuation, raw)[0] == clean


def test_collapse_punctuation_leaves_ellipsis_and_dashes():
    text = "等等……2021——2025年，好。"
    assert run(N.collapse_punctuation, text)[0] == text


# --------------------------------------------------------------------------- furniture

@pytest.mark.parametrize("line, kind", [
    ("首页 / 信息公开 / 重点公开领域 / 民生事项", "navigation"),
    ("当前位置：首页 > 政府信息公开 > 通知", "navigation"),
    ("您好！欢迎进入四川省科学技术厅，今天是 无障碍", "navigation"),
    ("索引号：11510000008282399T/2023-00560", "metadata"),
    ("文 号：川科普〔2023〕9号", "metadata"),
    ("发布机构：科普处", "metadata"),
    ("时间：2023-02-22 16:53 访问量：", "metadata"),
    ("【字体：", "font size"),
    ("扫一扫在手机打开当前页", "share"),
    ("相关信息", "share"),
    ("(上接06版)", "newspaper mark"),
    ("（下转第7版）", "newspaper mark"),
    ("附件：昆山市2021—2025年全民科学素质行动规划纲要实施方案", "attachment line"),
    ("科协发普字〔2021〕61号", "issuing number"),
    ("昆全科办发【2023】1号", "issuing number"),
    ("ksskxjsj/2023-00012", "index number"),
    ("2021年12月24日", "date"),
    ("2023-02-22", "date"),
    ("二〇二三年二月十三日", "date"),
    ("202312月20", "date"),
    ("(四川省科学技术厅代章)", "seal"),
    ("（此件公开发布）", "release note"),
    ("各市委、市人民政府，省委各部门，省直各单位，各人民团体：", "addressee"),
    ("各全民科学素质领导小组成员单位：", "addressee"),
    ("- 3 -", "page number"),
    ("第 2 页 共 5 页", "page number"),
    ("版权所有：某某市科学技术协会", "site footer"),
])
def test_furniture_patterns(line, kind):
    assert N.furniture_kind(line) == kind


@pytest.mark.parametrize("line", [
    "一、前言",
    "(三)主要目标",
    "各地要重点做好以下工作：",
    "到2025年，全市科学技术教育、传播与普及工作要得到长足发展。",
    "(一)推进信息无障碍建设。",
    "关于印发《昆山市2021—2025年全民科学素质行动规划纲要实施方案》的通知",
    "（责任部门：省科技厅）",
])
def test_furniture_patterns_keep_document_text(line):
    assert N.furniture_kind(line) is None


def test_remove_furniture_signature_block_above_date():
    text = "请认真贯彻执行。\n\n中国科协\n2021年12月24日\n正文标题"
    out, removed = run(N.remove_furniture, text)
    assert out.split("\n") == ["请认真贯彻执行。", "", "正文标题"]
    assert "signature: 中国科协" in removed and "date: 2021年12月24日" in removed


def test_remove_furniture_indented_signature():
    text = "请认真贯彻执行。\n                      江西省人民政府办公厅\n正文"
    out, _ = run(N.remove_furniture, text)
    assert "办公厅" not in out


def test_remove_furniture_metadata_block_after_index_number():
    text = "ksskxjsj/2023-00012\n科教文卫通知\n昆山市科学技术局\n2023-02-22\n关于印发方案的通知"
    out, removed = run(N.remove_furniture, text)
    assert out == "关于印发方案的通知"
    assert len(removed) == 4


# --------------------------------------------------------------------------- PDF reflow, broken paragraphs, tidy

def test_reflow_pdf_lines_joins_full_width_lines_only():
    text = "\n".join([
        "关于加强科普工作的意见",
        "坚持以人民为中心，提升全民科学素质。到2025年，公民具备科学素",
        "质的比例达到15%。",
        "一、总体要求",
        "(一)加强青少年科学教育。将科学教育纳入课后服务。每年举办科技",
        "节。",
        "二、重点任务",
    ])
    out, _ = run(N.reflow_pdf_lines, text)
    assert out.split("\n") == [
        "关于加强科普工作的意见",
        "坚持以人民为中心，提升全民科学素质。到2025年，公民具备科学素质的比例达到15%。",
        "一、总体要求",
        "(一)加强青少年科学教育。将科学教育纳入课后服务。每年举办科技节。",
        "二、重点任务",
    ]


def test_rejoin_broken_paragraphs_across_column_break():
    text = "推动社区科普大学转型升级。在城乡社区综合\n\n服务设施、社区图书馆等平台拓展科普服务功能。\n\n建设一批青少年科学营地。"
    out, removed = run(N.rejoin_broken_paragraphs, text)
    assert "在城乡社区综合服务设施、社区图书馆" in out
    assert "建设一批青少年科学营地。" in out.split("\n")
    assert removed


def test_rejoin_broken_paragraphs_keeps_headings_and_numbered_lines():
    text = "关于印发方案的通知\n一、前言\n科学素质是基础。公民具备科学素质\n1.突出价值引领。"
    out, _ = run(N.rejoin_broken_paragraphs, text)
    assert out == text


def test_tidy_lines():
    assert run(N.tidy_lines, "  ###   (三)标题  \n\n\n  正文。 \n")[0] == "### (三)标题\n正文。"


# --------------------------------------------------------------------------- pipeline

def test_pipeline_order_and_normalize():
    assert N.PIPELINE[0] is N.normalize_whitespace and N.PIPELINE[-1] is N.tidy_lines
    raw = "科協(xié)發(fā)普字〔2021〕61號(hào)\n各全國學(xué)會(huì),、協(xié)會(huì):\n學會科普工作取得顯著成效,,打造活動品牌,。\n"
    clean, removed = N.normalize(raw)
    assert clean == "学会科普工作取得显著成效，打造活动品牌。"
    assert any(r.startswith("issuing number") for r in removed)
    assert any(r.startswith("addressee") for r in removed)


def test_reflow_only_for_pdf():
    raw = "坚持以人民为中心，提升全民科学素质，到2025年公民具备科学素\n质的比例达到15%。"
    assert N.normalize(raw, kind="pdf")[0].count("\n") == 0
    assert N.normalize(raw, kind="txt")[0].count("\n") == 1


# --------------------------------------------------------------------------- web-copy rules (corpus)

def apply(rule, text):
    return run(rule, text)[0]


def test_remove_html_fragments_tags_and_entities():
    out = apply(N.remove_html_fragments, '<strike id="ab1">加强</strike>科普&nbsp;工作</div>《<全民科学素质纲要>》')
    assert out == "加强科普 工作《<全民科学素质纲要>》"


def test_strip_trailing_replacement_chars():
    assert apply(N.strip_trailing_replacement_chars, "推动科普工作高质\ufffd\n下一行") == "推动科普工作高质\n下一行"


def test_join_cjk_spaces_inside_words_only():
    assert apply(N.join_cjk_spaces, "鼓励企 业事业单位参与讲解视 频录制") == "鼓励企业事业单位参与讲解视频录制"
    assert apply(N.join_cjk_spaces, "第一条 为了加强科普") == "第一条 为了加强科普"
    assert apply(N.join_cjk_spaces, "印发《科普能力建设 夯实基础的意见》") == "印发《科普能力建设 夯实基础的意见》"
    assert apply(N.join_cjk_spaces, "2023 年 AI 应用") == "2023 年 AI 应用"


def test_remove_question_mark_runs():
    assert apply(N.remove_question_mark_runs, "一、活动时间？???\n是否？") == "一、活动时间\n是否？"


def test_remove_toneless_pinyin_only_when_frequent():
    text = "国家(jia)交(jiao)通(tong)运(yun)输(shu)科普基地"
    assert apply(N.remove_toneless_pinyin, text) == "国家交通运输科普基地"
    assert apply(N.remove_toneless_pinyin, "下载科普(app)使用") == "下载科普(app)使用"


@pytest.mark.parametrize("line, kind", [
    ("网上有关“某市科普条例”话题很是火热，小编也是针对某市科普条例寻找了一些信息进行分析。", "seo spam"),
    ("《某区科普讲解比赛方案.docx》由会员分享，可在线阅读，更多相关《某区科普讲解比赛方案》请在文库搜索。", "seo spam"),
    ("导语：科技活动周方案一文来源于网友上传，不代表本站观点，欢迎参考。", "seo spam"),
    ("文本内容：", "seo spam"),
    ("欢迎光临某某知识产权代理有限公司官网！", "seo spam"),
    ("亚洲成人福利在线|国产精品在线观看|日韩无码专区", "keyword spam"),
    ("北京天津河北山西内蒙古辽宁吉林黑龙江上海江苏浙江安徽", "keyword spam"),
    ("法搜网--中国法律信息搜索网", "site name"),
    ("copyright 2001-2021 Some Association All Rights Reserved", "site footer"),
    ("记者 张三(某某日报) |", "byline"),
    ("(记者李四)", "byline"),
    ("（通讯员 王五）", "byline"),
    ("(完)", "byline"),
    ("责任编辑：赵六", "metadata"),
    ("联系电话：12345678", "contact"),
    ("1.jpg", "image"),
    ("名  称： 关于印发某方案的通知 发布日期： 2012年09月28日", "metadata"),
    ("【发布部门】某市人大 【效力级别】地方性法规", "metadata"),
    ("第一章 总则……………………1", "table of contents"),
    ("目  录", "table of contents"),
])
def test_corpus_furniture_patterns(line, kind):
    assert N.furniture_kind(line) == kind


@pytest.mark.parametrize("line", [
    "记者从中国科协了解到，该行动计划分两步走。",
    "欢迎广大科技工作者积极参与。",
    "本报讯 4月21日，某市举办专题讲座。",
])
def test_corpus_furniture_patterns_keep_text(line):
    assert N.furniture_kind(line) is None


def test_split_run_in_articles():
    text = "第一章 总则第一条 为加强科普工作，制定本条例。第二条 本市行政区域内的科普，适用本条例。"
    assert apply(N.split_run_in_articles, text).split("\n") == [
        "第一章 总则", "第一条 为加强科普工作，制定本条例。", "第二条 本市行政区域内的科普，适用本条例。"]


def test_split_run_in_articles_keeps_references():
    text = "第五条 依照本条例第十条规定办理。本办法第三条所称基地，是指科普基地。"
    assert apply(N.split_run_in_articles, text) == text


def test_split_embedded_numbering_long_lines_only():
    body = "加强科普能力建设，完善科普工作机制，推动形成全社会共同参与的大科普格局" * 3
    text = f"一、总体要求{body}。二、重点任务{body}。（一）加强队伍建设{body}。"
    assert apply(N.split_embedded_numbering, text).split("\n") == [
        f"一、总体要求{body}。", f"二、重点任务{body}。", f"（一）加强队伍建设{body}。"]
    assert apply(N.split_embedded_numbering, "详见附件。1.报名表") == "详见附件。1.报名表"


def test_join_bare_markers():
    assert apply(N.join_bare_markers, "第一条\n为了加强科普工作。\n第二条 适用范围。") == \
        "第一条 为了加强科普工作。\n第二条 适用范围。"
    assert apply(N.join_bare_markers, "（一）\n（二）加强") == "（一）\n（二）加强"


def test_remove_toc_lines():
    text = "第一章 总则\n第二章 组织管理\n第三章 附则\n第一章 总则\n第一条 为了加强科普工作。"
    assert apply(N.remove_toc_lines, text) == "第一章 总则\n第一条 为了加强科普工作。"


# --- rules for download-site copies (segfix) -------------------------------------------

def test_remove_inline_watermarks_url_account_and_repeated_stamp():
    from policytag.text.normalization import remove_inline_watermarks

    removed: list = []
    text = ("实施“科普进基层——学党史星河文创素材库:(https://www.example.cn/。公众…号:某某星域。|整理汇总。、办实事”工程。\n"
            "建立长效机制。某某教育在线\n"
            "提升科学教育水平。某某教育在线\n"
            "完善评价办法。")
    out = remove_inline_watermarks(text, removed)
    assert out.split("\n") == ["实施“科普进基层——学党史、办实事”工程。", "建立长效机制。", "提升科学教育水平。", "完善评价办法。"]
    # a tail that occurs once is text, not a stamp
    assert remove_inline_watermarks("开展活动。详见附表\n其他。", []) == "开展活动。详见附表\n其他。"


def test_join_docsite_page_chunks():
    from policytag.text.normalization import join_docsite_page_chunks

    a = "1、某某条例第一条为了" + "加强科普工作，" * 40 + "倡导科学方"
    b = "2、法，传播科学思想。第二条本条例适用于本省。"
    out = join_docsite_page_chunks(f"{a}\n{b}", [])
    assert out == a[2:] + b[2:]
    # real items that end their sentences stay
    items = "1、" + "加强农村科普。" * 40 + "\n2、建立社区科普队伍。"
    assert join_docsite_page_chunks(items, []) == items


def test_split_title_run_in_drops_adoption_note():
    from policytag.text.normalization import split_title_run_in

    removed: list = []
    out = split_title_run_in("某省科学技术普及条例(2006年3月30日某省人大常委会会议通过自2006年5月1日起施行)第一章总则", removed)
    assert out == "某省科学技术普及条例\n第一章总则"
    assert split_title_run_in("某某大赛实施方案一、大赛主题为宣传科学。", []) == "某某大赛实施方案\n一、大赛主题为宣传科学。"
    assert split_title_run_in("根据某某方案开展工作。", []) == "根据某某方案开展工作。"


def test_remove_box_drawing_rows():
    from policytag.text.normalization import remove_box_drawing_rows

    text = "任务分工表\n┌──┬──┐\n│工作内容 │牵头单位 │\n└──┴──┘\n二、工作要求"
    assert remove_box_drawing_rows(text, []) == "任务分工表\n二、工作要求"
