"""bkdsl.lower"""
