"""The hostile suite: attacks against a real ``python wsgi.py`` while a bystander echoes.

``attacks.py`` drives the attacks, ``harness.py`` runs one (server, bystander, memory
sampling) and returns its figures, ``test_hostile.py`` asserts them (``pytest -m hostile``),
and ``scripts/hostile.py`` prints them as a table.
"""
