"""fasterdb"""
