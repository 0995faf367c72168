"""REST endpoint for MT5 statement import: ``POST /api/accounts/{id}/statements`` (multipart)."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from .api import ERRORS, ErrorSerializer
from .models import TradingAccount
from .permissions import restrict
from .statements.importing import statement_import
from .statements.upload import StatementTooLarge, read_upload, request_too_large, upload_limit_message

CHANGE = "accounts.change_tradingaccount"


class StatementUploadSerializer(serializers.Serializer):
    report = serializers.FileField(help_text="The MT5 terminal's trade-history Report export, HTML or XLSX.")

    def validate_report(self, report):
        # The size the upload handler counted, before a byte of the file is read.
        if report.size is None or report.size > settings.STATEMENT_MAX_UPLOAD_BYTES:
            raise StatementTooLarge(upload_limit_message())
        return report


class SkippedDealSerializer(serializers.Serializer):
    ticket = serializers.IntegerField()
    reason = serializers.CharField()


class StatementImportSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    account = serializers.UUIDField(source="account_id")
    filename = serializers.CharField()
    file_format = serializers.ChoiceField(choices=["html", "xlsx"])
    report_login = serializers.IntegerField(allow_null=True)
    uploaded_at = serializers.DateTimeField()
    deals_found = serializers.IntegerField()
    deals_imported = serializers.IntegerField()
    deals_skipped = serializers.IntegerField()
    skipped = SkippedDealSerializer(many=True)


class StatementImportView(APIView):
    capabilities = "accounts.manage"
    parser_classes = [MultiPartParser, FormParser]

    def initial(self, request, *args, **kwargs):
        # Before authentication: its CSRF check (session clients) reads request.POST, which parses, and so
        # receives, the whole multipart body. A request declaring more than the limit is refused unread.
        if request.method == "POST" and request_too_large(request.META):
            raise StatementTooLarge(upload_limit_message())
        super().initial(request, *args, **kwargs)

    @extend_schema(
        request={"multipart/form-data": StatementUploadSerializer},
        responses={
            201: StatementImportSerializer,
            **ERRORS,
            413: OpenApiResponse(ErrorSerializer, description="The upload is larger than the limit"),
        },
        tags=["accounts"],
        summary="Import an MT5 trade-history report into an account",
        description="Parses the report, skips deals whose ticket is already stored (with the reason) and stores "
        "the rest in one transaction. A malformed file answers 400 `statement_invalid` and changes nothing; so "
        "does a file that would expand past the row, column or cell limits (STATEMENT_MAX_ROWS, "
        "STATEMENT_MAX_CELLS, STATEMENT_MAX_UNZIPPED_BYTES). A request larger than STATEMENT_MAX_UPLOAD_BYTES "
        "answers 413 `statement_too_large` before its body is read.",
    )
    def post(self, request, account_id):
        account = get_object_or_404(restrict(request.user, CHANGE, TradingAccount.objects.all()), pk=account_id)
        serializer = StatementUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        report = serializer.validated_data["report"]
        # A malformed report raises StatementInvalid (a ServiceError): 400 with a clear message.
        record = statement_import(
            account=account, user=request.user, filename=report.name or "report", data=read_upload(report)
        )
        return Response(StatementImportSerializer(record).data, status=status.HTTP_201_CREATED)
