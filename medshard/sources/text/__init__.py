"""Text and image-text sources: instruction data and figure-caption pairs."""
