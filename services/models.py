import functools
import re
import zoneinfo

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import connection, models
from django.utils import timezone

from controlplane import adapters, connections
from controlplane.models import Archivable, Entity, require_aware
from services import policy_refs, promotion

ENVIRONMENT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
PRODUCTION_NAMES = ("prod", "production")
POLICY_REF = re.compile(r"^policy:[a-z][a-z0-9-]*(:[^:\s]+)*$")
# host/owner/name; GitLab-style subgroups may stand between owner and name.
REPO_PATH = re.compile(r"^[a-z0-9.-]+\.[a-z]{2,}(:\d+)?(/[A-Za-z0-9._-]+){2,}$")
DOT_SEGMENTS = {".", ".."}  # github.com/a/b/../../etc would name another path than it seems to
# user@host/owner/name, user:password@host/…: credentials before the host, without a scheme to show them.
USERINFO = re.compile(r"^[^@/]+@")
MAX_ORDER = 1000
ORDER_RULE = f"must be a whole number from 0 to {MAX_ORDER}, or null (after the ordered environments)."


def normalize_repo(value: str) -> str:
    """`https://github.com/blackroad/demo.git` and friends become `github.com/blackroad/demo`."""
    repo = value.strip()
    repo = re.sub(r"^(https?|git|ssh)://", "", repo, flags=re.IGNORECASE)
    # A URL's userinfo (https://user:pw@, ssh://git@) is refused as credentials before this runs, and the
    # scheme-less user@host/… form by Service.clean; what remains here is one already redacted (REDACTED@).
    repo = re.sub(r"^[^@/]+@", "", repo)
    repo = repo.rstrip("/").removesuffix(".git").rstrip("/")
    host, _, path = repo.partition("/")
    return f"{host.lower()}/{path}" if path else host.lower()


# The PostgreSQL advisory lock environment saves take turns on (Environment.save_base): any fixed number of ours.
ENVIRONMENT_SAVES = 0x656E76  # "env"


class Environment(Archivable, Entity):
    ID_PREFIX = "env-"
    REFUSES_SECRETS = True  # typed by users: a secret in a field is refused, not stored

    name = models.CharField(max_length=63, help_text="Lower-case letters, digits and dashes; unique.")
    region = models.CharField(max_length=63, blank=True, help_text="Empty: the adapter's default region.")
    cluster = models.CharField(max_length=100, blank=True, help_text="Empty: the adapter's default cluster.")
    policy_refs = models.JSONField(default=list, blank=True, help_text='Handles like "policy:change-window:weekday".')
    connection = models.CharField(
        max_length=63,
        blank=True,
        help_text="A connection from CONTROLPLANE_CONNECTIONS: its adapter deploys here for real. Empty: simulated.",
    )
    order = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0, ORDER_RULE), MaxValueValidator(MAX_ORDER, ORDER_RULE)],
        help_text=f"0-{MAX_ORDER}: its place in promotion order where policy:requires refs leave a choice, lower "
        "first. Empty: after the ordered environments, by name.",
    )
    # Its place in promotion order, 0 first (services.promotion): kept by every save that can move it.
    promotion_rank = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    DERIVED_FIELDS = ("promotion_rank",)

    class Meta:
        ordering = list(promotion.PROMOTION_ORDER)
        constraints = [
            models.UniqueConstraint(
                fields=["name"],
                name="%(app_label)s_%(class)s_unique_name",
            ),
            models.CheckConstraint(
                condition=models.Q(order__isnull=True) | models.Q(order__gte=0, order__lte=MAX_ORDER),
                name="%(app_label)s_%(class)s_order_range",
                violation_error_message=f"order {ORDER_RULE}",
            ),
        ]

    def validate_constraints(self, exclude=None):
        # The order's range is its field's validators' rule, word for word; the constraint holds it against raw
        # SQL. Django would ask the database to check it again on every save (a savepoint and a query).
        super().validate_constraints(exclude={*(exclude or ()), "order"})

    def save_base(self, *args, raw=False, **kwargs):
        # Promotion order is every environment's, from their names, orders and requires refs: a save that changes
        # one of those renumbers them all, in its transaction. A raw save (a restore) is renumbered once the whole
        # fixture is in (`renumber_after_load`).
        self._moves = not raw and (
            self._state.adding or any(self.stored(name) != getattr(self, name) for name in promotion.ORDERED_BY)
        )
        if not raw and connection.vendor == "postgresql":
            # Environment saves take turns, from the start of their transaction: a renumbering updates other
            # environments' rows after its audit event has locked the trail's head, and a concurrent save holding
            # one of them while it waited for the head would deadlock with it. SQLite writes one at a time.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ENVIRONMENT_SAVES])
        super().save_base(*args, raw=raw, **kwargs)
        if self._moves:  # after its audit event, which records what was written, not the order derived from it
            self.promotion_rank = promotion.renumber(type(self))[self.pk]

    @property
    def mode(self) -> str:
        """ "live" where a connection deploys for real, else "simulated" (what every door shows)."""
        return "live" if self.connection else "simulated"

    @property
    def is_production(self) -> bool:
        return self.name in PRODUCTION_NAMES or self.name.startswith(tuple(f"{n}-" for n in PRODUCTION_NAMES))

    def clean(self):
        super().clean()
        errors: dict[str, list[str]] = {}
        self.region, self.cluster = self.region.strip(), self.cluster.strip()
        if self.name and not ENVIRONMENT_NAME.match(self.name):
            errors["name"] = ["must be 1-63 lower-case letters, digits or dashes, starting with a letter or digit."]
        if self.is_production:
            for field in ("region", "cluster"):
                if not getattr(self, field):
                    errors[field] = [f"is required for a production environment ({self.name!r})."]
        self.connection = (self.connection or "").strip()
        if self.connection and connections.get(self.connection) is None:
            known = ", ".join(connections.names()) or "none is configured (CONTROLPLANE_CONNECTIONS)"
            errors["connection"] = [f"unknown connection {self.connection!r}; configured: {known}."]
        if not isinstance(self.policy_refs, list):
            errors["policy_refs"] = ["must be a list of strings like 'policy:<kind>[:<arg>...]'."]
        else:
            bad = [ref for ref in self.policy_refs if not isinstance(ref, str) or not POLICY_REF.match(ref)]
            if bad:
                errors["policy_refs"] = [f"{ref!r} is not of the form 'policy:<kind>[:<arg>...]'." for ref in bad]
            elif len(set(self.policy_refs)) != len(self.policy_refs):
                errors["policy_refs"] = ["lists a policy more than once."]
            else:
                problems = self._policy_ref_problems()
                if problems:
                    errors["policy_refs"] = problems
        if errors:
            raise ValidationError(errors)

    def _policy_ref_problems(self) -> list[str]:
        """Each ref must be in the catalogue (services.policy_refs) and name a window or environment that exists."""
        problems, parsed = [], []
        for text in self.policy_refs:
            try:
                parsed.append(policy_refs.parse(text))
            except ValueError as exc:
                problems.append(str(exc))
        windows = {ref.window for ref in parsed if ref.kind == "change-window"}
        known = set(ChangeWindow.objects.filter(name__in=windows).values_list("name", flat=True)) if windows else set()
        for ref in parsed:
            if ref.kind == "change-window" and ref.window not in known:
                problems.append(f"{ref.text!r}: unknown change window {ref.window!r}.")
            elif ref.kind == "requires":
                if ref.environment == self.pk:
                    problems.append(f"{ref.text!r}: an environment cannot require itself.")
                elif not Environment.objects.filter(pk=ref.environment).exists():
                    problems.append(f"{ref.text!r}: unknown environment {ref.environment!r}.")
        for kind in ("incident-gate", "approval"):
            if sum(ref.kind == kind for ref in parsed) > 1:
                problems.append(f"names policy:{kind} more than once; keep one.")
        return problems


HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # ISO weekdays 1-7
DASH = "\u2013"  # the en dash of "Mon-Fri 09:00-17:00" as pages and refusals print it


def minutes(hhmm: str) -> int:
    """ "09:30" → 570; "24:00" (a window's end only) → 1440."""
    hours, mins = hhmm.split(":")
    return int(hours) * 60 + int(mins)


def day_list(days) -> str:
    """[1, 2, 3, 4, 5] → "Mon-Fri" (an en dash); [1, 3, 7] → "Mon, Wed, Sun"."""
    days = sorted(days)
    if len(days) > 2 and days == list(range(days[0], days[-1] + 1)):
        return f"{WEEKDAYS[days[0] - 1]}{DASH}{WEEKDAYS[days[-1] - 1]}"
    return ", ".join(WEEKDAYS[d - 1] for d in days)


class ChangeWindow(Entity):
    """When deploys and promotions may reach the environments whose refs name it (`policy:change-window:<name>`):
    on the listed ISO weekdays, from `start` to `end` in the window's own time zone. An `end` before `start`
    crosses midnight (the day is the one it starts on); `end` may be "24:00"."""

    ID_PREFIX = "cw-"
    REFUSES_SECRETS = True

    name = models.CharField(max_length=63, help_text="Lower-case letters, digits and dashes; unique. Refs name it.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # (after created_at: in the class body this name shadows django.utils.timezone)
    timezone = models.CharField(max_length=64, help_text="An IANA time zone name, like Europe/Berlin.")
    days = models.JSONField(help_text="ISO weekdays it opens on, 1 (Monday) to 7 (Sunday).")
    start = models.CharField(max_length=5, help_text='"HH:MM", local time.')
    end = models.CharField(max_length=5, help_text='"HH:MM" or "24:00", local time; before start: crosses midnight.')

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["name"], name="%(app_label)s_%(class)s_unique_name")]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def summary(self) -> str:
        """ "Mon-Fri 09:00-17:00 Europe/Berlin" (en dashes): what a refusal and a page say about it."""
        return f"{day_list(self.days)} {self.start}{DASH}{self.end} {self.timezone}"

    def clean(self):
        super().clean()
        errors: dict[str, list[str]] = {}
        if self.name and not ENVIRONMENT_NAME.match(self.name):
            errors["name"] = ["must be 1-63 lower-case letters, digits or dashes, starting with a letter or digit."]
        elif self.stored("name") and self.name != self.stored("name"):
            users = _environments_naming(self.stored("name"))
            if users:
                errors["name"] = [f"is named by the policy refs of {', '.join(users)}; change those first."]
        if not valid_zone(self.timezone):
            errors["timezone"] = [f"{self.timezone!r} is not an IANA time zone name (like Europe/Berlin)."]
        if (
            not isinstance(self.days, list)
            or not self.days
            or not all(type(d) is int and 1 <= d <= 7 for d in self.days)
            or len(set(self.days)) != len(self.days)
        ):
            errors["days"] = ["must list ISO weekdays 1 (Monday) to 7 (Sunday), each once, at least one."]
        else:
            self.days = sorted(self.days)
        if not isinstance(self.start, str) or not HHMM.match(self.start):
            errors["start"] = ['must be a time "HH:MM" from 00:00 to 23:59.']
        if not isinstance(self.end, str) or not (HHMM.match(self.end) or self.end == "24:00"):
            errors["end"] = ['must be a time "HH:MM" from 00:00 to 24:00.']
        elif "start" not in errors and minutes(self.start) == minutes(self.end):
            errors["end"] = ['must differ from start (for whole days: start "00:00", end "24:00").']
        if errors:
            raise ValidationError(errors)


def _environments_naming(window: str) -> list[str]:
    ref = f"policy:change-window:{window}"
    return sorted(pk for pk, refs in Environment.objects.values_list("pk", "policy_refs") if ref in (refs or ()))


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def valid_zone(name) -> bool:
    if not isinstance(name, str) or not name or name != name.strip() or name.startswith(("/", ".")) or ".." in name:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return name in _zones() or name == "UTC"


class Freeze(Entity):
    """While it runs (startsAt ≤ now < endsAt), nothing but rollbacks reaches the environments it names."""

    ID_PREFIX = "frz-"
    REFUSES_SECRETS = True

    title = models.CharField(max_length=200)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    env_ids = models.JSONField(help_text="The environments it freezes (ids).")
    reason = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-starts_at", "id"]
        indexes = [models.Index(fields=["ends_at"], name="freeze_ends_idx")]

    def __str__(self) -> str:
        return self.id

    def clean(self):
        super().clean()
        errors: dict[str, list[str]] = {}
        if not self.title.strip():
            errors["title"] = ["must not be blank."]
        # A TextField's max_length only sizes the admin's form: the rule is kept here, for every door.
        limit = self._meta.get_field("reason").max_length
        if isinstance(self.reason, str) and len(self.reason) > limit:
            errors["reason"] = [f"must be at most {limit} characters (it has {len(self.reason)})."]
        self.starts_at = require_aware(self.starts_at, "starts_at", errors)
        self.ends_at = require_aware(self.ends_at, "ends_at", errors)
        both = self.starts_at and self.ends_at and "starts_at" not in errors and "ends_at" not in errors
        if both and self.ends_at <= self.starts_at:
            errors["ends_at"] = ["must be after startsAt."]
        if not isinstance(self.env_ids, list) or not self.env_ids or not all(isinstance(e, str) for e in self.env_ids):
            errors["env_ids"] = ["must list one or more environment ids."]
        elif len(set(self.env_ids)) != len(self.env_ids):
            errors["env_ids"] = ["lists an environment more than once."]
        else:
            known = set(Environment.objects.filter(pk__in=self.env_ids).values_list("pk", flat=True))
            missing = [e for e in self.env_ids if e not in known]
            if missing:
                errors["env_ids"] = [f"unknown environment {', '.join(map(repr, missing))}."]
        if errors:
            raise ValidationError(errors)

    def covers(self, environment_id: str, at) -> bool:
        return environment_id in self.env_ids and self.starts_at <= at < self.ends_at


class Service(Archivable, Entity):
    ID_PREFIX = "svc-"
    REFUSES_SECRETS = True  # typed by users: a secret in a field is refused, not stored

    name = models.CharField(max_length=100)
    repo = models.CharField(max_length=255, help_text="host/owner/name; https:// and .git forms are normalised.")
    deployment_adapters = models.JSONField(default=list, help_text=f"One or more of: {', '.join(adapters.names())}.")
    environments = models.ManyToManyField(Environment, related_name="services", blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name", "id"]
        # Lists and the services index page in this order: a page is read from the index, not sorted.
        indexes = [models.Index(fields=["name", "id"], name="service_order_idx")]

    def clean(self):
        super().clean()
        errors: dict[str, list[str]] = {}
        if not self.name.strip():
            errors["name"] = ["must not be blank."]
        if self.repo and USERINFO.match(self.repo.strip()):
            errors["repo"] = ["must not name a user or password before '@'; the control plane stores no credentials."]
        elif self.repo:
            self.repo = normalize_repo(self.repo)
            if not REPO_PATH.match(self.repo):
                errors["repo"] = [f"{self.repo!r} is not a repository of the form host/owner/name."]
            elif DOT_SEGMENTS & set(self.repo.split("/")[1:]):
                errors["repo"] = [f"{self.repo!r} has a '.' or '..' path segment; name the repository itself."]
        problem = deployment_adapters_problem(self.deployment_adapters)
        if problem:
            errors["deployment_adapters"] = [problem]
        if errors:
            raise ValidationError(errors)


def deployment_adapters_problem(value) -> str | None:
    valid = ", ".join(adapters.names())
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        return f"must list one or more adapters from: {valid}."
    unknown = [name for name in value if name not in adapters.registry]
    if unknown:
        return f"unknown adapter {', '.join(map(repr, unknown))}; valid adapters: {valid}."
    if len(set(value)) != len(value):
        return "lists an adapter more than once."
    return None


def environment_links_problem(service_ids, environment_ids, adding: bool) -> str | None:
    """Why linking (or unlinking) these services and environments is refused, if it is."""
    if adding:
        found = dict(Environment.objects.filter(pk__in=environment_ids).values_list("pk", "archived_at"))
        missing = sorted(set(environment_ids) - set(found))
        if missing:
            return f"unknown environment {', '.join(map(repr, missing))}."
        archived = sorted(pk for pk, archived_at in found.items() if archived_at)
        if archived:
            return f"environment {', '.join(map(repr, archived))} is archived."
        return None
    # Unlinking: a release's environment must stay one of its service's, so history pins the link. Asked
    # through the environments' `releases` (the relation the releases app declares), not by importing it.
    pinned = (
        Environment.objects.filter(pk__in=environment_ids, releases__service_id__in=service_ids)
        .values_list("releases__service_id", "pk")
        .first()
    )
    if pinned:
        return (
            f"service {pinned[0]!r} has releases in environment {pinned[1]!r}, so it stays linked "
            "(archive the environment instead)."
        )
    return None


def renumber_after_load(sender, **kwargs):
    """fixture_loaded: a restore writes environments raw (their promotion_rank ignored, DERIVED_FIELDS), so the
    order is renumbered from what it restored, in the load's transaction."""
    promotion.renumber(Environment)


def check_environment_links(sender, instance, action, reverse, pk_set, **kwargs):
    """m2m_changed: every path that links services and environments, both directions, is checked."""
    if action not in ("pre_add", "pre_remove", "pre_clear"):
        return
    if action == "pre_clear":
        pk_set = set((instance.services if reverse else instance.environments).values_list("pk", flat=True))
    if reverse:
        service_ids, environment_ids = pk_set, {instance.pk}
        if action == "pre_add":
            missing = sorted(set(pk_set) - set(Service.objects.filter(pk__in=pk_set).values_list("pk", flat=True)))
            if missing:
                raise ValidationError({"services": f"unknown service {', '.join(map(repr, missing))}."})
    else:
        service_ids, environment_ids = {instance.pk}, pk_set
    problem = environment_links_problem(service_ids, environment_ids, adding=action == "pre_add")
    if problem:
        raise ValidationError({"services" if reverse else "environments": problem})
