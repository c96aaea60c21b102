"""The authors' published hyperparameter tables, transcribed (one module per repository).

Each table is keyed by (dataset, ipc); `jaxdd.config.lookup` reads them and raises for a
setting the authors did not publish. tests/test_parity_*tables* check every entry against a
fixture generated from the authors' own hyper_params.py / scripts.

Convention for configs (read by `jaxdd.published.table` and launch/settings_table.py):

* ``VARIANTS``: a module-level list in every configs/<objective>_<param>.py, the config
  strings (the part after ``:`` in ``--config=configs/x.py:<variant>``, e.g.
  ``"cifar10,ipc=10"``) of the published settings the config encodes, usually built from
  the table of this package that the config reads. The embedded default (no argument) is
  not a published setting and is not listed.
* ``cfg.source``: a string field of every ConfigDict (default set by
  ``jaxdd.config.base_config``: "jaxdd default (not a published setting)") naming where the
  setting comes from, e.g. "MTT readme.md hyper-parameter table", "FreD TM/hyper_params.py",
  "DDiF TM/hyper_params.py", "NSD paper Sec. 4.1 + Table 1".

The README's settings table is generated from these (``python launch/settings_table.py``),
never typed by hand.
"""
