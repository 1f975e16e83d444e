"""bkdsl.syntax"""
