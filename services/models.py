import re

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from controlplane import adapters
from controlplane.models import Archivable, Entity

ENVIRONMENT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
PRODUCTION_NAMES = ("prod", "production")
POLICY_REF = re.compile(r"^policy:[a-z][a-z0-9-]*(:[^:\s]+)*$")
# host/owner/name; GitLab-style subgroups may stand between owner and name.
REPO_PATH = re.compile(r"^[a-z0-9.-]+\.[a-z]{2,}(:\d+)?(/[A-Za-z0-9._-]+){2,}$")
DOT_SEGMENTS = {".", ".."}  # github.com/a/b/../../etc would name another path than it seems to
# user@host/owner/name, user:password@host/…: credentials before the host, without a scheme to show them.
USERINFO = re.compile(r"^[^@/]+@")


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


class Environment(Archivable, Entity):
    ID_PREFIX = "env-"
    REFUSES_SECRETS = True  # typed by users: a secret in a field is refused, not stored

    name = models.CharField(max_length=63, help_text="Lower-case letters, digits and dashes; unique.")
    region = models.CharField(max_length=63, blank=True, help_text="Empty: the adapter's default region.")
    cluster = models.CharField(max_length=100, blank=True, help_text="Empty: the adapter's default cluster.")
    policy_refs = models.JSONField(default=list, blank=True, help_text='Handles like "policy:change-window:weekday".')
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["name"],
                name="%(app_label)s_%(class)s_unique_name",
            ),
        ]

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
        if not isinstance(self.policy_refs, list):
            errors["policy_refs"] = ["must be a list of strings like 'policy:<kind>[:<arg>...]'."]
        else:
            bad = [ref for ref in self.policy_refs if not isinstance(ref, str) or not POLICY_REF.match(ref)]
            if bad:
                errors["policy_refs"] = [f"{ref!r} is not of the form 'policy:<kind>[:<arg>...]'." for ref in bad]
            elif len(set(self.policy_refs)) != len(self.policy_refs):
                errors["policy_refs"] = ["lists a policy more than once."]
        if errors:
            raise ValidationError(errors)


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
