"""Runs started before 0005 do not name their task (0005 added `task_id`, empty), though their task was
queued (on commit, by `releases.workflows`) and may still be waiting. Name it from the queue, so the
recovery does not fail such a run as "no task was queued for it" while its task can still run it.

A run whose task is gone keeps an empty `task_id`, and the recovery fails it, as before. Reversing this
migration leaves the names in place: 0005's reversal drops the column."""

from django.db import migrations

TASK_PATH = "releases.tasks.execute_run"
UNFINISHED = ("READY", "RUNNING")


def name_tasks(apps, schema_editor):
    WorkflowRun = apps.get_model("releases", "WorkflowRun")
    DBTaskResult = apps.get_model("django_tasks_database", "DBTaskResult")
    db = schema_editor.connection.alias
    unnamed = WorkflowRun.objects.using(db).filter(state="Running", task_id="")
    for run_id in list(unnamed.values_list("pk", flat=True)):
        tasks = DBTaskResult.objects.using(db).filter(task_path=TASK_PATH, args_kwargs__args=[run_id])
        # A task that may still run it, before one that has ended (a duplicate queued by hand, say).
        task = (
            tasks.filter(status__in=UNFINISHED).order_by("-enqueued_at").first()
            or tasks.order_by("-enqueued_at").first()
        )
        if task is not None:
            WorkflowRun.objects.using(db).filter(pk=run_id, task_id="").update(task_id=str(task.pk))


class Migration(migrations.Migration):
    dependencies = [
        ("releases", "0005_run_claim_heartbeat_and_append_only_log"),
        ("django_tasks_database", "0021_conditional_partial_index_ordering"),
    ]

    operations = [
        migrations.RunPython(name_tasks, migrations.RunPython.noop),
    ]
