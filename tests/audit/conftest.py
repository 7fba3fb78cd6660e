import pytest

from audit.models import AuditEvent


@pytest.fixture(autouse=True)
def audit_log(settings, tmp_path):
    """Each test mirrors to its own file."""
    settings.AUDIT_LOG = str(tmp_path / "audit" / "control-plane.log")
    return tmp_path / "audit" / "control-plane.log"


class Trail:
    """The events written since the trail was last looked at."""

    def __init__(self):
        self.mark = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0

    def new(self) -> list[AuditEvent]:
        events = list(AuditEvent.objects.filter(seq__gt=self.mark).order_by("seq"))
        if events:
            self.mark = events[-1].seq
        return events

    def actions(self) -> list[tuple[str, str]]:
        return [(e.action, e.subject_id) for e in self.new()]


@pytest.fixture
def trail(db):
    return Trail()
