"""The services index over REST: `GET /api/services/index/`, with the services list's filters and pages."""

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.generics import GenericAPIView

from overview import services_index
from services.filtersets import ServiceFilterSet
from services.models import Service


class ServicesIndexView(GenericAPIView):
    queryset = Service.objects.all()
    filterset_class = ServiceFilterSet
    ordering = ("name", "id")

    @extend_schema(operation_id="services_index", responses=services_index.ServiceIndexEntrySerializer(many=True))
    def get(self, request):
        """The services index: per environment the latest and current release, open incidents, audit tail."""

        def build():
            rows = services_index.services(self.filter_queryset(self.get_queryset()))
            return self.get_paginated_response(services_index.entries(self.paginate_queryset(rows))).data

        body = services_index.cached(request.build_absolute_uri(), build)
        return HttpResponse(body, content_type="application/json")
