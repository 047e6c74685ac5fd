"""Structure sources: macromolecular structures (wwPDB mmCIF entries)."""
