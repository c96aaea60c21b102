"""The authors' published hyperparameters, transcribed (one module per method / repository).

Plain data only: nothing here imports jaxdd.config, an objective or a parameterization. The
configs (jaxdd.config) and the objectives read these values; this package reads neither.

  mtt    MTT's TM rows (readme.md table / commands) and buffer recipe
  fred   FreD's TM / DM / DC rows (hyper_params.py + the run scripts)
  ddif   DDiF's field sizes and TM / DM / DC run settings
  ddif_modal  DDiF's video (MiniUCF), voxel (ModelNet-10, ShapeNet) and audio (Mini Speech
         Commands; paper only) rows; FreD's 3D MNIST rows are fred.DM_3D
  dm     DM's recipe (main_DM.py defaults) and the settings its paper reports
  dc     DC's recipe (main.py defaults, get_loops) and the settings its papers report
  table  the settings table rendered from the configs (docs)

Each table is keyed by (dataset, ipc); `lookup` reads one row and raises (listing the known
rows) for a setting the authors did not publish. tests/test_parity_*tables* check every entry
against a fixture generated from the authors' own hyper_params.py / scripts.

A (dataset, ipc) without a published row still gets a config: jaxdd.config derives it (the
nearest published row of the same image shape, else the digits default, re-sized for the
storage budget) and labels it ``cfg.source = "derived, not published: <how>"``.

Convention for configs (read by `jaxdd.published.table` and launch/settings_table.py):

* ``VARIANTS``: a module-level list in every configs/<objective>_<param>.py, the config
  strings (the part after ``:`` in ``--config=configs/x.py:<variant>``, e.g.
  ``"cifar10,ipc=10"``) of the published settings the config encodes, usually built from
  the table of this package that the config reads. The embedded default (no argument) and
  derived settings are not published settings and are not listed.
* ``cfg.source``: a string field of every ConfigDict (default set by
  ``jaxdd.config.base_config``: "jaxdd default (not a published setting)") naming where the
  setting comes from, e.g. "MTT readme.md hyper-parameter table", "FreD TM/hyper_params.py",
  "DDiF TM/hyper_params.py", "NSD paper Sec. 4.1 + Table 1", or "derived, not published: ...".

The settings table is generated from these (``python launch/settings_table.py``), never
typed by hand.
"""
from __future__ import annotations

DERIVED = "derived, not published"  # the prefix of every derived config's cfg.source


def lookup(table: dict, dataset: str, ipc: int, what: str):
    """table[(dataset, ipc)], or a ValueError naming `what` and listing the known settings.

    A published table never falls back to another row: jaxdd.config derives the settings
    of an unpublished (dataset, ipc) itself and says so in cfg.source.
    """
    try:
        return table[(dataset, int(ipc))]
    except KeyError:
        known = ", ".join(f"{d}:ipc={i}" for d, i in sorted(table))
        raise ValueError(
            f"{what} has no published setting for dataset={dataset!r} ipc={ipc}; known: "
            f"{known}") from None
