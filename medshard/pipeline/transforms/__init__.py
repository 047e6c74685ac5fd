"""Payload standardization: small functions over plain numpy values."""
