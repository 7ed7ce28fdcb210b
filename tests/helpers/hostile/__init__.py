"""The hostile suite's engine: ``attacks.py`` drives the attacks, ``harness.py`` runs one
(server, bystander, memory sampling) and returns its figures. ``tests/hostile/test_hostile.py``
asserts them (``pytest -m hostile``), and ``scripts/hostile.py`` prints them as a table.
"""
