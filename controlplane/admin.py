"""What every domain admin shares: forms that show every model rule as a form error, no deletes,
ids and immutable fields read-only once saved, and lifecycle actions that report conflicts."""

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from controlplane.errors import Conflict


class DomainModelForm(forms.ModelForm):
    def _update_errors(self, errors):
        # Model rules may name a field this form does not show (read-only ones); Django would raise
        # ValueError (a 500) for those, so report them on the form as a whole, naming the field.
        if hasattr(errors, "error_dict"):
            shown, hidden = {}, []
            for field, field_errors in errors.error_dict.items():
                if field == NON_FIELD_ERRORS or field in self.fields:
                    shown[field] = field_errors
                else:
                    hidden += [f"{field}: {m}" for e in field_errors for m in e.messages]
            if hidden:
                shown.setdefault(NON_FIELD_ERRORS, []).extend(ValidationError(m) for m in hidden)
            errors = ValidationError(shown)
        super()._update_errors(errors)


class LinesField(forms.CharField):
    """A list of strings edited as one per line."""

    widget = forms.Textarea(attrs={"rows": 3})

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        return [line.strip() for line in (value or "").splitlines() if line.strip()]


class DomainAdmin(admin.ModelAdmin):
    form = DomainModelForm
    show_full_result_count = False  # no COUNT(*) over the whole table on every list page

    def has_delete_permission(self, request, obj=None):
        return False  # history is kept: archive instead

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields += [self.model._meta.pk.name, *getattr(self.model, "IMMUTABLE_FIELDS", ())]
        return fields


class ReadOnlyAdmin(DomainAdmin):
    """History written by the system (runs, logs, audit events): viewable, never edited here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def lifecycle_action(move: Callable, description: str):
    """An admin action applying a domain move to each selected object, reporting what it refused."""

    def action(modeladmin, request, queryset):
        done = 0
        for obj in queryset:
            try:
                move(obj)
                done += 1
            except (Conflict, ValidationError) as e:
                modeladmin.message_user(request, f"{obj}: {e}", messages.ERROR)
        if done:
            modeladmin.message_user(request, f"{description}: {done} done.", messages.SUCCESS)

    action.__name__ = move.__name__
    action.short_description = description
    return action


class ArchivedFilter(admin.SimpleListFilter):
    title = "archived"
    parameter_name = "archived"

    def lookups(self, request, model_admin):
        return [("no", "Active"), ("yes", "Archived")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(archived_at__isnull=self.value() == "no")
        return queryset
