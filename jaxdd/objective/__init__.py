"""Objectives: what the synthetic set must match (TM, DM, DC, CFM).

Each objective module exposes `make_loss(...)` returning a pure
`loss(key, syn_images, syn_labels, ctx) -> scalar`. Objectives never import
`jaxdd.param`.
"""
