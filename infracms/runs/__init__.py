"""The run engine: render a run's input, drive ansible-runner behind one adapter, events.

``render.py`` and ``inventory.py`` write an ansible-runner private data dir from a
frozen input, ``adapter.py`` is the only importer of ``ansible_runner``,
``playbook_wrapper.py`` keeps a playbook in its own process group, ``events.py`` batches
and redacts events, ``workdir.py`` holds run directories in memory. Nothing here reads
the database or calls services: executing a run (claiming, heartbeats, recording) is
``infracms/orchestration/``.
"""
