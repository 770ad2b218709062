"""Shipped label data: taxonomy.yaml, gold clauses, splits, source documents."""
