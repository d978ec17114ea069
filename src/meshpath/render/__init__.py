"""Pure renderers: nftables, FRR and systemd text from plan data (no I/O).

Every renderer returns text; the real tool validates it before anything is applied
(``nft -c -f``, ``vtysh -C -f``, ``frr-reload.py --test``), see :mod:`meshpath.apply`.
"""
