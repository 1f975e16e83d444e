"""bkdsl.semantics"""
