"""The names Celery's messages travel under (no import of celery, for the jobs that read them)."""

TASK_NAME = "infracms.execute_run"
QUEUE = "infracms.runs"
