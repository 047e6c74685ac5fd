"""Fundus sources (Messidor-2, APTOS 2019, Jichi): retinal photographs with DR grades."""
