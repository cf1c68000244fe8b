"""The one error type the broker raises; the gRPC layer turns it into a status with the same code."""

from __future__ import annotations

import grpc


class PubSubError(Exception):
    """A request the real service would refuse, carrying the gRPC code it would refuse it with."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def not_found(what: str) -> PubSubError:
    return PubSubError(grpc.StatusCode.NOT_FOUND, f"Resource not found (resource={what}).")


def already_exists(what: str) -> PubSubError:
    return PubSubError(grpc.StatusCode.ALREADY_EXISTS, f"Resource already exists in the project (resource={what}).")


def invalid(message: str) -> PubSubError:
    return PubSubError(grpc.StatusCode.INVALID_ARGUMENT, message)


def failed_precondition(message: str) -> PubSubError:
    return PubSubError(grpc.StatusCode.FAILED_PRECONDITION, message)
