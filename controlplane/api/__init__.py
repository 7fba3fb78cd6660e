"""The REST API's shared parts; each domain app's `api.py` holds its serializers and viewsets."""
