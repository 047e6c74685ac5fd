"""Ultrasound sources (images and cine loops)."""
