"""Orchestration: where and when runs and periodic work happen.

Beside ``services/``, which it calls: the one function every executor calls with a run
id (``execute.py``), the executors (``executors.py``: a thread pool in the server;
``celery_executor.py``: Celery workers over Redis), the Celery app (``celery_app.py``,
the only importer of ``celery``), the worker process and its supervisor (``worker.py``),
bootstrap's mechanics (``bootstrap.py``: scan a host's key, run the one-time playbook),
and the one registry of periodic jobs (``jobs/``), read by the server's in-process
scheduler (``scheduler.py``) and by ``infracms beat`` (``beat.py``).

The HTTP layers and the CLI reach this package through ``services.execution`` and
``services.bootstrap``; ``cli/setup.py`` starts the worker and beat processes.
"""
