"""Reading what a user gives the app: pasted text, uploaded files, a zip of files.

Every refusal is an :class:`InputError` with a Chinese message that says what to do
(and the English gist in brackets), raised before any model runs.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from policytag.errors import InputError
from policytag.text.ingestion import SUPPORTED_SUFFIXES, Document, doc_id_for, document_from_text, load_document

PASTED_NAME = "粘贴的文本"
ZIP_SUFFIX = ".zip"

# old or foreign formats: what to do instead (shown before the file is opened)
SUFFIX_ADVICE = {
    ".doc": "旧版 Word 文件（.doc）无法读取：请在 Word 或 WPS 中“另存为” .docx 或 PDF 后再上传",
    ".wps": "WPS 文字文件无法读取：请另存为 .docx 或 PDF 后再上传",
    ".rtf": "RTF 文件无法读取：请另存为 .docx 或 .txt 后再上传",
    ".ofd": "OFD 文件无法读取：请导出为 PDF 后再上传",
    ".xls": "这是表格文件，不是政策文件：请把正文另存为 .txt 或 .docx",
    ".xlsx": "这是表格文件，不是政策文件：请把正文另存为 .txt 或 .docx",
    ".pptx": "演示文稿无法读取：请把正文另存为 .docx 或 PDF",
    ".ppt": "演示文稿无法读取：请把正文另存为 .docx 或 PDF",
    ".wpd": "请另存为 .docx 或 PDF 后再上传",
}


def supported_suffixes() -> list[str]:
    """File types the app accepts: those :mod:`policytag.text.ingestion` reads, plus .zip."""
    return sorted(SUPPORTED_SUFFIXES) + [ZIP_SUFFIX]


def upload_types() -> list[str]:
    """What the upload widget lets through: readable types, and the ones we explain (.doc: save as .docx)."""
    return supported_suffixes() + sorted(SUFFIX_ADVICE)


@dataclass
class DocMeta:
    """What the exports say about a document besides its clauses."""

    title: str = ""
    file_name: str = ""
    issuer: str = ""
    year: str = ""


_TITLE_END = re.compile(r"(措施|方案|意见|规划|通知|办法|条例|决定|计划|纲要|规定|细则|要点|实施|公告)[》」]?$")
_ISSUER = re.compile(r"(?:中共)?[\u4e00-\u9fa5]{2,24}(?:人民政府办公厅|人民政府|办公厅|委员会|科学技术协会|科协|办公室|厅|局)")
_NOT_ISSUER = ("格局", "布局", "大局", "全局", "结局", "当局", "工作局")
_YEAR = re.compile(r"(20\d{2}|19\d{2})(?:\s*年|-\d{1,2}-\d{1,2})")
_YEAR_ID = re.compile(r"(?:^|[-_])((?:19|20)\d{2})(?:$|[-_])")


def doc_meta(text: str, name: str, doc_id: str = "") -> DocMeta:
    """Best-effort title, issuer and year of a policy document (blank when not found)."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    title = ""
    for ln in lines[:8]:
        m = re.search(r"《([^》]{4,60})》", ln)
        if m:
            title = m.group(1)
            break
        if len(ln) <= 60 and _TITLE_END.search(ln):
            title = ln
            break
    issuer = ""
    for ln in list(reversed(lines[-6:])) + lines[:6]:  # the signature first, then the head
        cand = re.sub(r"\s+", "", ln)
        if _ISSUER.fullmatch(cand) and not cand.endswith(_NOT_ISSUER):
            issuer = cand
            break
    year = ""
    m = _YEAR_ID.search(doc_id or "")
    if m:
        year = m.group(1)
    else:
        for ln in list(reversed(lines[-4:])) + [title] + lines[:6]:
            m = _YEAR.search(ln or "")
            if m:
                year = m.group(1)
                break
    return DocMeta(title=title or Path(name).stem, file_name=name, issuer=issuer, year=year)


def check_chars(n: int, name: str, max_chars: int) -> None:
    if max_chars and n > max_chars:
        raise InputError(
            f"{name} 过长：{n:,} 字，网页版上限 {max_chars:,} 字（约 {max_chars // 1700} 页）。"
            "请拆分文档，或用命令行 `policytag predict FILE -o out.xlsx` 标注整份长文档 "
            f"(document too long for the web app: {n:,} characters, limit {max_chars:,})")


def read_text(text: str | None, name: str | None = None, *, max_chars: int = 0) -> Document:
    """Pasted text as a document; ``name`` (a user-given document name) also gives the doc id."""
    if text is None or not str(text).strip():
        raise InputError("没有文本：请粘贴政策文件的正文，或上传 .txt/.docx/.pdf/.html 文件 "
                         "(no text: paste a document or upload a file)")
    name = (name or "").strip() or None
    check_chars(len(text), name or PASTED_NAME, max_chars)
    doc_id = doc_id_for(name) if name else "pasted"
    return document_from_text(text, doc_id=doc_id, name=name)


def check_suffix(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix in SUPPORTED_SUFFIXES or suffix == ZIP_SUFFIX:
        return suffix
    advice = SUFFIX_ADVICE.get(suffix, f"请上传 {' / '.join(supported_suffixes())} 文件")
    raise InputError(f"{name}：不支持的文件类型 {suffix or '(无扩展名)'}。{advice} "
                     f"(unsupported file type {suffix or '(none)'})")


def read_file(path: str | Path, name: str | None = None, *, max_chars: int = 0, max_file_mb: float = 0) -> Document:
    """One uploaded document (``name``: the file name the user sees; the temp path differs)."""
    path = Path(path)
    name = name or path.name
    check_suffix(name)
    if not path.exists() or path.stat().st_size == 0:
        raise InputError(f"文件 {name} 是空的 (the file is empty)")
    if max_file_mb and path.stat().st_size > max_file_mb * 1024 * 1024:
        raise InputError(f"文件 {name} 超过 {max_file_mb:g} MB 上限 (file too large)；"
                         "用命令行 `policytag predict` 标注大文件")
    if path.suffix.lower() != Path(name).suffix.lower():  # ingestion reads by suffix: give it the real one
        tmp = Path(tempfile.mkdtemp(prefix="policytag-up-")) / Path(name).name
        shutil.copyfile(path, tmp)
        path = tmp
    doc = load_document(path, doc_id=doc_id_for(name))
    check_chars(len(doc.text), name, max_chars)
    return doc


def expand_zip(path: Path, dest: Path, *, max_total_mb: float, max_files: int) -> list[tuple[Path, str]]:
    """The documents inside a zip as (extracted path, name); caps the decompressed size and the count."""
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise InputError(f"{path.name} 不是有效的 zip 文件 (not a zip file)") from None
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir() and not _hidden(m.filename)]
        docs = [m for m in members if Path(m.filename).suffix.lower() in SUPPORTED_SUFFIXES]
        if not docs:
            raise InputError(f"{path.name} 里没有可读的文档（.txt/.docx/.pdf/.html） (no documents in the zip)")
        if len(docs) > max_files:
            raise InputError(f"{path.name} 有 {len(docs)} 个文档，网页版一次最多 {max_files} 个 (too many files)")
        total = sum(m.file_size for m in docs)
        if total > max_total_mb * 1024 * 1024:
            raise InputError(f"{path.name} 解压后 {total / 1048576:.0f} MB，超过 {max_total_mb:g} MB 上限 "
                             "(zip too large when decompressed)")
        out = []
        for i, m in enumerate(docs):
            name = Path(m.filename).name  # no directories: nothing is written outside dest
            target = dest / f"{i:03d}-{name}"
            with zf.open(m) as src, target.open("wb") as dst:
                _copy_limited(src, dst, m.file_size)
            out.append((target, name))
        return out


def _copy_limited(src: Any, dst: Any, limit: int) -> int:
    """Copy at most ``limit`` bytes (the size the zip declares; a lying header cannot inflate more)."""
    n = 0
    while True:
        chunk = src.read(min(1 << 20, limit + 1 - n))
        if not chunk:
            return n
        n += len(chunk)
        if n > limit:
            raise InputError("zip 文件内容与声明的大小不符 (corrupt zip)")
        dst.write(chunk)


def _hidden(name: str) -> bool:
    """macOS resource forks and dot files (a ``..`` in the path is harmless: only the base name is used)."""
    return Path(name).name.startswith(".") or any(part == "__MACOSX" for part in Path(name).parts)


def upload_paths(files: Any) -> list[tuple[str, str]]:
    """(path, original name) of Gradio upload values: a path, a FileData, a dict, or a list of them."""
    if files is None or files == []:
        raise InputError("没有文件：请选择 .txt/.docx/.pdf/.html 文件或 .zip (no file uploaded)")
    items: Iterable[Any] = files if isinstance(files, (list, tuple)) else [files]
    out = []
    for f in items:
        if isinstance(f, dict):
            p = f.get("path") or f.get("name")
            out.append((str(p), str(f.get("orig_name") or Path(str(p)).name)))
        else:
            p = getattr(f, "path", None) or getattr(f, "name", None) or str(f)
            out.append((str(p), str(getattr(f, "orig_name", None) or Path(str(p)).name)))
    return out
