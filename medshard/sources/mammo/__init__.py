"""Mammography sources: one sample per breast, its views as image roles."""
