"""The upload of an MT5 report: refused by its size before it is read; the errors a report can raise."""

from __future__ import annotations

from django.conf import settings

from config.errors import ServiceError

# Room for the multipart boundary, part headers and the CSRF field around the file itself.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


class StatementInvalid(ServiceError):
    code = "statement_invalid"


class StatementTooLarge(StatementInvalid):
    status_code = 413
    code = "statement_too_large"


# --- the upload: refused by its size before it is read -------------------------------------


def upload_limit_message() -> str:
    limit = settings.STATEMENT_MAX_UPLOAD_BYTES
    size = f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit} bytes"
    return f"The file is larger than {size}; export a shorter date range."


def request_too_large(meta) -> bool:
    """Whether a request's declared body is larger than any acceptable report upload.

    Checked before anything touches ``request.POST`` / ``request.FILES`` / ``request.data``: parsing the
    multipart body is what streams the whole upload to memory and disk. (Django's DATA_UPLOAD_MAX_MEMORY_SIZE
    does not count file parts.)
    """
    try:
        length = int(meta.get("CONTENT_LENGTH") or 0)
    except (TypeError, ValueError):
        return False  # Django's parser refuses a malformed length itself
    return length > settings.STATEMENT_MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES


def read_upload(upload) -> bytes:
    """The bytes of an uploaded report, its size checked before a single byte is read."""
    limit = settings.STATEMENT_MAX_UPLOAD_BYTES
    if upload.size is None or upload.size > limit:
        raise StatementTooLarge(upload_limit_message())
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise StatementTooLarge(upload_limit_message())
    return data
