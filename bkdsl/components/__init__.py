"""bkdsl.components"""
