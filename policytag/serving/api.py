"""The app's public API: the four named endpoints ``gradio_client`` calls, and their help text.

``/tag_text``, ``/tag_file``, ``/save_correction``, ``/model_info`` are the only public
endpoints; each is a typed function over :class:`~policytag.serving.workbench.AppService`.
"""

from __future__ import annotations

import functools
from typing import Any

import gradio as gr

from policytag.serving.handlers import problem
from policytag.serving.workbench import AppService


def _api_errors(fn: Any) -> Any:
    """Named endpoints: a user-fixable error comes back as a Gradio error message, never a trace."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as e:  # noqa: BLE001
            raise gr.Error(problem(e), title="无法完成 (cannot do this)", print_exception=False) from None

    return wrapper


def named_endpoints(svc: AppService) -> None:
    """The public API (``gradio_client``): four typed functions returning JSON."""

    @_api_errors
    def tag_text(text: str, name: str = "") -> dict:
        """Tag pasted document text (name: optional document name). Returns the clauses (doc_id, clause_id, context, text, span, agencies, themes, measures, p_<label> scores, model_version), the theme × measure heat map and the counts per measure family."""
        return svc.api_result(svc.tag(svc.read_text(text, name=name or None), name=name or None))

    @_api_errors
    def tag_file(file: gr.FileData) -> dict:
        """Tag an uploaded .txt/.docx/.pdf/.html document (use gradio_client.handle_file). Same answer as tag_text."""
        (doc, name), *more = svc.read_uploads(file)
        return svc.api_result(svc.tag(doc, name=name))

    @_api_errors
    def save_correction(clause: dict, themes: list[str], measures: list[str], annotator: str = "",
                        note: str = "") -> dict:
        """Save corrected labels for one clause (a clause dict as returned by tag_text, or at least {"text": ...}). themes/measures: label ids such as "youth", "activities" (Chinese names accepted). annotator is required. Saving the same labels twice does not add a row."""
        rid, written, new = svc.save_correction(dict(clause or {}), themes or [], measures or [], annotator, note)
        return {"id": rid, "written": written, "clause_id": new.clause_id, "status": new.status,
                "themes": new.themes, "measures": new.measures}

    @_api_errors
    def model_info() -> dict:
        """The served model: version, base model, training data, evaluation figures, corrections since training."""
        return svc.model_info()

    gr.api(tag_text, api_name="tag_text", concurrency_id="tagging")
    gr.api(tag_file, api_name="tag_file", concurrency_id="tagging")
    gr.api(save_correction, api_name="save_correction", concurrency_id="corrections")
    gr.api(model_info, api_name="model_info")


PUBLIC_ENDPOINTS = ("/tag_text", "/tag_file", "/save_correction", "/model_info")


def api_help(url: str, lang: str = "zh") -> str:
    intro = "### Calling the app from Python (gradio_client)" if lang == "en" else "### 用 Python 调用 (gradio_client)"
    return f"""{intro}

```python
from gradio_client import Client, handle_file

client = Client("{url}")
res = client.predict("（一）实施青少年科学素质提升行动。开展科技馆进校园活动。", api_name="/tag_text")
for c in res["clauses"]:
    print(c["clause_id"], c["themes"], c["measures"], c["text"][:30])

res = client.predict(handle_file("policy.docx"), api_name="/tag_file")   # .txt/.docx/.pdf/.html

clause = res["clauses"][0]
client.predict(clause, ["youth"], ["activities"], "张三", "馆校合作", api_name="/save_correction")
print(client.predict(api_name="/model_info"))
```

Endpoints: `/tag_text(text, name="")`, `/tag_file(file)`, `/save_correction(clause, themes, measures, annotator, note)`
(annotator required), `/model_info()`. Label ids: see `labels/taxonomy.yaml`; Chinese names are accepted too. Errors
(empty text, unsupported file, a document above the size limit) come back as `gradio_client.exceptions.AppError`.
"""
