"""Every reason a boundary refuses something, in one registry.

A refusal anywhere — an HTTP 4xx ``details[].type``, a dead letter's ``captionqc-dead-letter-reason``, a media URI
rule, a refused webhook — names one of these codes, so an operator can grep one list and a client can branch on a
code instead of parsing a message. `docs/security.md` says which control raises each one.
"""

from __future__ import annotations

from enum import StrEnum


class Refusal(StrEnum):
    # -- messages on any subscription ---------------------------------------------------------------------------
    MALFORMED_ENVELOPE = "malformed_envelope"  # CloudEvents attributes missing, wrong or unstorable
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    UNSUPPORTED_SCHEMA_VERSION = "unsupported_schema_version"
    INVALID_EVENT_DATA = "invalid_event_data"  # the payload breaks its JSON Schema
    UNEXPECTED_TYPE = "unexpected_type"  # a known type, but not one this subscription's producers publish
    MESSAGE_TOO_LARGE = "message_too_large"  # over the configured message limit: recorded truncated, never retried
    # -- dead letters that fail no job (kept as orphans by the status service) -------------------------------------
    UNTRUSTED_SOURCE = "untrusted_source"  # from intake (outside) or from no subscription of ours: proves nothing
    UNKNOWN_JOB = "unknown_job"  # names no job, or one that does not exist (a dead letter never creates a job)
    # -- the intake door -----------------------------------------------------------------------------------------
    UNAUTHENTICATED = "unauthenticated"  # no token, or one that does not verify
    INSUFFICIENT_SCOPE = "insufficient_scope"
    UNKNOWN_TENANT = "unknown_tenant"  # a token for a tenant nobody registered
    TENANT_DISABLED = "tenant_disabled"
    TOKEN_LIFETIME = "token_lifetime"  # noqa: S105 - a reason code, not a secret; the token lives longer than the configured maximum
    TENANT_MISMATCH = "tenant_mismatch"  # the message names another tenant than its publisher's
    JOB_ID_TAKEN = "job_id_taken"  # an intake job id that is already some job's
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"  # the same key (or ce-id) with a different request
    QUOTA_EXCEEDED = "quota_exceeded"
    # -- media and callback URLs ---------------------------------------------------------------------------------
    URI_SYNTAX = "uri_syntax"
    SCHEME_NOT_ALLOWED = "scheme_not_allowed"
    GS_BUCKET = "gs_bucket"
    GS_OBJECT = "gs_object"
    PATH_ESCAPE = "path_escape"
    FILE_DISABLED = "file_disabled"
    FILE_HOST = "file_host"
    OUTSIDE_TENANT_AREA = "outside_tenant_area"  # a file:// or gs:// URI outside the caller's own media area
    USERINFO = "userinfo"
    METADATA_HOST = "metadata_host"
    HOST_NOT_ALLOWED = "host_not_allowed"
    UNRESOLVABLE_HOST = "unresolvable_host"
    PRIVATE_ADDRESS = "private_address"  # loopback, private, shared, link-local, reserved: not ``is_global``
    # -- HTTP inputs -----------------------------------------------------------------------------------------------
    INVALID_ID = "invalid_id"  # a path id or cursor that is not what it must be
    CONTROL_CHARACTER = "control_character"  # NUL or another control character where text reaches storage


__all__ = ["Refusal"]
