from django.dispatch import Signal

# A domain action (a status move such as release.activate) has happened, inside its transaction.
# Arguments: sender (the model class), instance, action ("<noun>.<verb>"), metadata (a dict).
action_performed = Signal()

# A fixture (a restore) has been loaded, inside the load's transaction; its objects were saved raw, so no
# save signal described them. Arguments: fixtures (file names), objects ({"app.model": count}).
fixture_loaded = Signal()

# The web server stops: sent on its streams' event loop, before it asks their connections to finish (so a
# stream can end itself, and its client reconnect elsewhere, rather than be cut). No arguments.
server_stopping = Signal()

# The worker's periodic round (with its recovery of runs): housekeeping that belongs to no request, such as
# purging expired idempotency keys. Sent as system:worker. No arguments.
worker_round = Signal()

# The worker has started: apps above releases start what else it runs (integrations: the webhooks' dispatcher,
# integrations.delivery.Dispatcher). `stop`: a threading.Event set when the worker stops.
worker_started = Signal()
