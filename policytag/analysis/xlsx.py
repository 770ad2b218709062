"""Safe Excel workbooks for the analysis exports: the styled writer lives in
:mod:`policytag.fileio` (the one place that writes files); re-exported here."""

from policytag.fileio import MAX_WIDTH, MIN_WIDTH, Sheet, display_width, safe_value, write_workbook

__all__ = ["MAX_WIDTH", "MIN_WIDTH", "Sheet", "display_width", "safe_value", "write_workbook"]
