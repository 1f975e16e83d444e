"""bkdsl.train"""
