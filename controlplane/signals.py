from django.dispatch import Signal

# A domain action (a status move such as release.activate) has happened, inside its transaction.
# Arguments: sender (the model class), instance, action ("<noun>.<verb>"), metadata (a dict).
action_performed = Signal()
