"""Downloads: consent-gated, verified, resumable transfers from PhysioNet, Kaggle, Zenodo,
GitHub, TCIA, plain HTTPS, institutional mirrors, and verified manual placement.

`download_source` (run.py) is the entry point; `commands.add_commands` wires the CLI.
"""
