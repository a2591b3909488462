"""The model registry: model versions, aliases with their history, gates, approvals.

- ``versions``  register / get / list model versions; their status and gate report
- ``aliases``   promote / rollback movable names (``production``, ``candidate``, …), append-only history
- ``gates``     pure checks of a candidate's metrics against floors, production and budgets
- ``gate``      the shell: evaluate candidate and production on the same split, store the verdict
- ``approvals`` a person's approve / reject of a model version awaiting approval

Statuses: ``registered`` → ``gate_failed`` | ``awaiting_approval`` | ``approved``;
``awaiting_approval`` → ``approved`` | ``rejected``. Only an ``approved`` version is promoted
(unless forced); the alias, not the status, says what serves.
"""
