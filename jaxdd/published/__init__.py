"""The authors' published hyperparameter tables, transcribed (one module per repository).

Each table is keyed by (dataset, ipc); `jaxdd.config.lookup` reads them and raises for a
setting the authors did not publish. tests/test_parity_*tables* check every entry against a
fixture generated from the authors' own hyper_params.py / scripts.
"""
