"""The hostile suite: attacks against a real ``python wsgi.py`` while a bystander echoes.

``test_hostile.py`` asserts each attack's figures (``pytest -m hostile``); the attacks and
the harness that runs them are in ``tests/helpers/hostile/``, and ``scripts/hostile.py``
prints the same figures as a table.
"""
