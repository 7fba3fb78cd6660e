from django_tasks import task

from controlplane.identity.context import acting_as
from releases import engine


@task(queue_name="workflows")
def execute_run(run_id: str) -> str:
    with acting_as("worker"):
        return engine.execute(run_id)
