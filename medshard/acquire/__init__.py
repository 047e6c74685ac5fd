"""Getting raw data: the consent ledger and downloads (providers, verification, safe extraction).

Needs neither Apache Beam nor the pipeline: `pip install "medshard[acquire]"` is enough to
accept terms and fetch a source.
"""
