"""Runs: render the input, run Ansible through ansible-runner, record events, executors.

The only package that imports ``ansible_runner`` (in ``adapter.py``) and ``celery``
(in ``celery_app.py``).
"""
