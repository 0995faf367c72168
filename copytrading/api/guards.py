"""The follower's risk guards in the API: resume a link after its equity stop, the stops' audit, and the copy
slippage and delay report per link (p50/p95 and each copy's fills)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import ERRORS

from ..equity_stops import link_resume
from ..models import LinkStop
from ..slippage import LIMIT, link_slippage
from .common import LINK_FILTER, filter_int
from .links import CopyLinkSerializer, link_for_change, links_visible_to


class LinkStopSerializer(serializers.ModelSerializer):
    class Meta:
        model = LinkStop
        fields = [
            "id",
            "link",
            "master_account",
            "slave_account",
            "action",
            "equity",
            "level",
            "detail",
            "closed_copies",
            "created_at",
        ]
        read_only_fields = fields


DEC = {"max_digits": 24, "decimal_places": 3, "read_only": True}


class CopyFillSerializer(serializers.Serializer):
    copy_id = serializers.CharField(read_only=True)
    master_ticket = serializers.IntegerField(read_only=True)
    slave_ticket = serializers.IntegerField(read_only=True)
    symbol = serializers.CharField(read_only=True, help_text="The slave symbol.")
    side = serializers.CharField(read_only=True, help_text="The slave's side.")
    volume = serializers.DecimalField(max_digits=14, decimal_places=4, read_only=True)
    master_price = serializers.DecimalField(max_digits=20, decimal_places=8, read_only=True)
    master_time = serializers.DateTimeField(read_only=True)
    slave_price = serializers.DecimalField(max_digits=20, decimal_places=8, read_only=True)
    slave_time = serializers.DateTimeField(read_only=True)
    slippage_price = serializers.DecimalField(
        max_digits=20, decimal_places=8, read_only=True, help_text="Positive: the slave filled worse than the master."
    )
    slippage_points = serializers.DecimalField(
        **DEC, allow_null=True, help_text="The same in the slave symbol's points (null: point unknown)."
    )
    delay_seconds = serializers.DecimalField(**DEC, help_text="Slave fill time minus master fill time.")


class LinkSlippageSerializer(serializers.Serializer):
    link = serializers.IntegerField(source="link_id", read_only=True)
    copies = serializers.IntegerField(read_only=True, help_text=f"Copies with both fills synced (newest {LIMIT}).")
    slippage_points_p50 = serializers.DecimalField(**DEC, allow_null=True)
    slippage_points_p95 = serializers.DecimalField(**DEC, allow_null=True)
    delay_seconds_p50 = serializers.DecimalField(**DEC, allow_null=True)
    delay_seconds_p95 = serializers.DecimalField(**DEC, allow_null=True)


class LinkSlippageDetailSerializer(LinkSlippageSerializer):
    fills = CopyFillSerializer(many=True, read_only=True)


@extend_schema(tags=["copy trading"])
class CopySlippageListView(APIView):
    """Copy slippage and delay per link the user sees: p50/p95 over each link's newest copies."""

    capabilities = "copy.view"

    @extend_schema(responses={200: LinkSlippageSerializer(many=True), **ERRORS})
    def get(self, request):
        links = list(links_visible_to(request.user).order_by("id"))
        report = link_slippage(links)
        return Response(LinkSlippageSerializer([report[link.pk] for link in links], many=True).data)


@extend_schema(tags=["copy trading"])
class CopyLinkSlippageView(APIView):
    """One link's slippage and delay: p50/p95 and every copy's master and slave fill, newest first."""

    capabilities = "copy.view"

    @extend_schema(responses={200: LinkSlippageDetailSerializer, **ERRORS})
    def get(self, request, pk: int):
        link = get_object_or_404(links_visible_to(request.user), pk=pk)
        return Response(LinkSlippageDetailSerializer(link_slippage([link])[link.pk]).data)


@extend_schema(tags=["copy trading"])
class CopyLinkResumeView(APIView):
    """Copy again after the link's equity stop (a % stop is then measured from the slave's equity now)."""

    capabilities = "copy.manage"

    @extend_schema(request=None, responses={200: CopyLinkSerializer, **ERRORS})
    def post(self, request, pk: int):
        link = link_resume(link_for_change(request.user, pk), actor=request.user)
        return Response(CopyLinkSerializer(link).data)


@extend_schema(
    tags=["copy trading"],
    parameters=[LINK_FILTER, OpenApiParameter("action", str, enum=["stopped", "resumed"])],
)
class LinkStopListView(ListAPIView):
    """The equity stops' audit: each stop (equity, level, copies closed) and resume, newest first."""

    serializer_class = LinkStopSerializer
    capabilities = "copy.view"

    def get_queryset(self):
        queryset = LinkStop.objects.filter(link__in=links_visible_to(self.request.user))
        if (link := filter_int(self.request, "link")) is not None:
            queryset = queryset.filter(link_id=link)
        if self.request.query_params.get("action") in ("stopped", "resumed"):
            queryset = queryset.filter(action=self.request.query_params["action"])
        return queryset.order_by("-created_at", "-id")
