"""The cross-app side: what spans every domain app and so sits above them all.

The derived views of docs/domain.md (the services index, the live streams of run logs and of the audit
trail) and the commands that fill every app at once (`load_demo`, `seed`). The domain apps never
import this package; it imports them (see docs/architecture.md, "Layers").
"""
