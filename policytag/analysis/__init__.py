"""Analysis of tagged rows: compare documents, who does what, and quantified targets.

Everything here works on tagged rows (one ``dict`` per clause, as produced by
:func:`policytag.serving.tagging.tag_clauses`, or gold clauses with their labels), so the
CLI, the app and notebooks call the same functions:

- :mod:`~policytag.analysis.compare`: theme × measure shares side by side, differences,
  family balance, the clauses behind a cell; :mod:`~policytag.analysis.compare_export`
  writes the XLSX and the figures.
- :mod:`~policytag.analysis.agencies`: canonical agency names, lead / supporting roles,
  agency × measure and agency × theme matrices; :mod:`agencies_export` writes them.
- :mod:`~policytag.analysis.targets`: numbers that policies promise (quantity, unit,
  indicator, comparator, deadline); :mod:`~policytag.analysis.numerals` reads Chinese and
  Arabic numerals; :mod:`~policytag.analysis.target_eval` scores the extractor;
  :mod:`targets_export` writes the table and figure.
- :mod:`~policytag.analysis.xlsx` (safe workbooks) and :mod:`~policytag.analysis.plotting`
  (CJK font, heat maps) are shared by the exports.
- :mod:`~policytag.analysis.inputs`: tagged rows from documents, folders, predict outputs
  or the gold labels.
"""
